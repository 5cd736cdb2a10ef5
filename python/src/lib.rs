//! The native half of the `wgfit` Python package (`python/wgfit/` is the other): a model
//! that trains, evaluates, predicts and saves through the Rust library, with inputs read in
//! place from NumPy arrays, other arrays passed as bytes, and configs as Keras's JSON. The
//! Python half gives it Keras's shape.

mod arrays;
mod callbacks;
mod optimizer;

use arrays::dataset;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::path::PathBuf;
use wgfit::{Dataset, FitOptions, Sequential, Tensor};

create_exception!(_wgfit, Error, PyException, "Any error wgfit reports.");
create_exception!(
    _wgfit,
    BackupMismatch,
    Error,
    "A backup (or weights file) of another run or model than this one."
);
create_exception!(
    _wgfit,
    DataError,
    Error,
    "Data that cannot be read or does not fit the model."
);
create_exception!(
    _wgfit,
    ConfigError,
    Error,
    "A model, layer, optimizer or callback configuration wgfit cannot take."
);
create_exception!(
    _wgfit,
    GpuError,
    Error,
    "No usable GPU adapter, or the device failed."
);
create_exception!(
    _wgfit,
    Preempted,
    Error,
    "SIGTERM or SIGINT stopped training after the backup was saved; args: (message, signal)."
);

/// The Python exception of a wgfit error, with the library's message.
fn py_err(e: wgfit::Error) -> PyErr {
    use wgfit::Error as E;
    let message = e.to_string();
    match e {
        E::Preempted { signal, .. } | E::StoppedBySignal { signal, .. } => {
            Preempted::new_err((message, signal))
        }
        E::FingerprintMismatch { .. }
        | E::ModelRecordMismatch { .. }
        | E::NotABackupDir { .. }
        | E::BackupBeyondEpochs { .. } => BackupMismatch::new_err(message),
        E::Shape { .. }
        | E::MissingTensor { .. }
        | E::DataIo { .. }
        | E::EmptyData { .. }
        | E::DataParse { .. }
        | E::InvalidData { .. }
        | E::LabelOutOfRange { .. } => DataError::new_err(message),
        E::Config { .. } | E::NotCompiled | E::ForeignModelFile { .. } => {
            ConfigError::new_err(message)
        }
        E::NoAdapter { .. }
        | E::DeviceRequest { .. }
        | E::GpuTimeout { .. }
        | E::DeviceLost { .. }
        | E::Gpu { .. }
        | E::TooLargeForAdapter { .. } => GpuError::new_err(message),
        _ => Error::new_err(message),
    }
}

fn config_err(message: impl Into<String>) -> PyErr {
    ConfigError::new_err(message.into())
}

/// Progress written to Python's `sys.stdout`, whatever it is (a terminal, a notebook's
/// output, a redirect), taking the GIL for each write: a few times a second, not per batch.
#[derive(Debug)]
struct PythonStdout;

impl wgfit::ProgressSink for PythonStdout {
    fn write(&mut self, text: &str) {
        Python::attach(|py| {
            // A closed or missing sys.stdout shows nothing; training goes on.
            if let Ok(out) = py.import("sys").and_then(|sys| sys.getattr("stdout")) {
                let _ = out.call_method1("write", (text,));
                let _ = out.call_method0("flush");
            }
        });
    }
}

/// Stops training at the next batch end when Python has a signal pending (Ctrl-C in a `fit`
/// without a BackupAndRestore, which saves first and handles signals itself), keeping the
/// exception Python's handler raised (KeyboardInterrupt) for `fit` to raise.
#[derive(Default)]
struct PythonSignals {
    raised: Option<PyErr>,
}

impl wgfit::Callback for PythonSignals {
    fn name(&self) -> &str {
        "PythonSignals"
    }

    fn on_train_batch_end(
        &mut self,
        ctx: &mut wgfit::Context<'_>,
        _batch: usize,
    ) -> wgfit::Result<()> {
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            self.raised = Some(e);
            ctx.stop_training();
        }
        Ok(())
    }
}

/// A model and the Keras config it was made from.
#[pyclass(name = "_Model", unsendable)]
struct Model {
    model: Sequential,
    config: String,
    /// Whether Keras's model ends in a softmax, which wgfit's loss applies instead.
    softmax_output: bool,
}

#[pymethods]
impl Model {
    /// The model Keras's `model.to_json()` text describes (Sequential or Functional).
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let keras = wgfit::from_keras_json(text).map_err(py_err)?;
        Ok(Model {
            model: keras.model,
            config: text.to_string(),
            softmax_output: keras.softmax_output,
        })
    }

    /// Whether Keras's model ends in a softmax (its `predict` gives probabilities where
    /// wgfit's gives logits).
    fn softmax_output(&self) -> bool {
        self.softmax_output
    }

    /// The input shape of one sample.
    fn input_shape(&self) -> Vec<usize> {
        self.model.input_shape().to_vec()
    }

    /// The output shape of one sample.
    fn output_shape(&self) -> PyResult<Vec<usize>> {
        let specs = self.model.specs().map_err(py_err)?;
        Ok(specs
            .last()
            .map_or(self.model.input_shape().to_vec(), |s| s.out_shape.clone()))
    }

    /// `loss`: `crossentropy` or `mse`; `optimizer`: Keras's serialized optimizer (JSON).
    fn compile(&mut self, loss: &str, optimizer: &str, seed: u64) -> PyResult<()> {
        let loss: wgfit::Loss = loss.parse().map_err(py_err)?;
        let optimizer = optimizer::from_keras(optimizer)?;
        // `seed` consumes the model: take it out for the moment.
        self.model = std::mem::replace(&mut self.model, Sequential::new(1)).seed(seed);
        self.model.compile(loss, optimizer).map_err(py_err)
    }

    /// Trains; returns the History's epochs as JSON (`[{"epoch": e, "logs": {...}}, ...]`).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (x, rows, y, y_kind, y_cols, epochs, batch_size, shuffle, seed, initial_epoch, verbose, dynamic, validation_split, validation, callbacks, path=None))]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        rows: usize,
        y: &[u8],
        y_kind: &str,
        y_cols: usize,
        epochs: usize,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        initial_epoch: usize,
        verbose: u8,
        dynamic: bool,
        validation_split: Option<f64>,
        validation: Option<(Bound<'_, PyAny>, usize, Vec<u8>)>,
        callbacks: Vec<(String, String)>,
        path: Option<PathBuf>,
    ) -> PyResult<String> {
        // A file (CSV or safetensors, as `wgfit train --data` reads it: mapped, and streamed
        // to the GPU a batch at a time when it is large), else the arrays.
        let data = match &path {
            Some(p) => Dataset::load(p, &wgfit::CsvOptions::default()).map_err(py_err)?,
            None => dataset(x, rows, y, y_kind, y_cols)?,
        };
        let validation_data = match validation {
            Some((vx, vrows, vy)) => Some(dataset(&vx, vrows, &vy, y_kind, y_cols)?),
            None => None,
        };
        let options = FitOptions {
            epochs,
            batch_size,
            shuffle,
            seed,
            initial_epoch,
            verbose: 0,
            validation_data,
            validation_split,
            ..FitOptions::default()
        };
        let mut built = callbacks::build(&callbacks)?;
        let mut progress = wgfit::Progress::new(verbose).to_sink(Box::new(PythonStdout), dynamic);
        let mut signals = PythonSignals::default();
        let backs_up = callbacks.iter().any(|(name, _)| name == "BackupAndRestore");
        let model = &mut self.model;
        // Training runs without the GIL: other Python threads go on meanwhile.
        let history = py.detach(|| {
            let mut list = built.list();
            list.push(&mut progress);
            if !backs_up {
                list.push(&mut signals);
            }
            model.fit(&data, options, &mut list)
        });
        if let Some(raised) = signals.raised {
            return Err(raised);
        }
        let history = history.map_err(py_err)?;
        serde_json::to_string(&history.to_vec()).map_err(|e| Error::new_err(e.to_string()))
    }

    /// The loss and metrics on `x`, `y`, as JSON.
    fn evaluate(
        &self,
        x: &Bound<'_, PyAny>,
        rows: usize,
        y: &[u8],
        y_kind: &str,
        y_cols: usize,
        batch_size: usize,
    ) -> PyResult<String> {
        let data = dataset(x, rows, y, y_kind, y_cols)?;
        let logs = self.model.evaluate(&data, batch_size).map_err(py_err)?;
        // JSON has no NaN or infinity: those go as the strings Python's float() reads.
        let logs: serde_json::Map<String, serde_json::Value> = logs
            .into_iter()
            .map(|(k, v)| match v.is_finite() {
                true => (k, v.into()),
                false => (k, v.to_string().into()),
            })
            .collect();
        serde_json::to_string(&logs).map_err(|e| Error::new_err(e.to_string()))
    }

    /// The model's outputs for `x` (a float32 array, read in place), as float32 bytes.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let y = arrays::with_rows(x, |x| self.model.predict(x, batch_size))?.map_err(py_err)?;
        Ok(PyBytes::new(py, bytemuck::cast_slice(&y)))
    }

    /// Every variable in Keras's order and layout (`model.get_weights()`): (shape, float32
    /// bytes) each.
    fn get_weights<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Vec<(Vec<usize>, Bound<'py, PyBytes>)>> {
        let vars = self.model.keras_variables().map_err(py_err)?;
        Ok(vars
            .into_iter()
            .map(|t| (t.shape, PyBytes::new(py, bytemuck::cast_slice(&t.data))))
            .collect())
    }

    /// Replaces every variable, given in Keras's order and layout as float32 bytes.
    fn set_weights(&mut self, weights: Vec<Vec<u8>>) -> PyResult<()> {
        let values: Vec<Vec<f32>> = weights
            .iter()
            .map(|w| bytemuck::pod_collect_to_vec(w))
            .collect();
        self.model.set_keras_variables(&values).map_err(py_err)
    }

    /// Writes the model by `path`'s extension: `.keras` (with the config it was made from),
    /// `.weights.h5`, `.onnx`, or wgfit's `.safetensors`.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let saved = if name.ends_with(".keras") {
            self.model.save_keras(&path, Some(&self.config))
        } else if name.ends_with(".weights.h5") {
            self.model.save_keras_weights(&path)
        } else if name.ends_with(".onnx") {
            self.model.save_onnx(&path)
        } else if name.ends_with(".safetensors") {
            self.model.save_weights(&path)
        } else {
            return Err(config_err(format!(
                "{}: name it .keras, .weights.h5, .onnx or .safetensors",
                path.display()
            )));
        };
        saved.map_err(py_err)
    }

    /// Reads the weights of a file `save` writes (`.keras`, `.weights.h5`, `.safetensors`).
    fn load_weights(&mut self, path: PathBuf) -> PyResult<()> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let tensors: Vec<Tensor> = if name.ends_with(".keras") {
            let file = wgfit::read_keras_file(&path).map_err(py_err)?;
            file.weights.tensors_for(&self.model).map_err(py_err)?
        } else if name.ends_with(".weights.h5") {
            self.model.read_keras_weights(&path).map_err(py_err)?
        } else {
            return self.model.load_weights(&path).map_err(py_err);
        };
        self.model.set_parameters(&tensors).map_err(py_err)
    }

    /// The config it was made from (`model.to_json()`'s text).
    fn to_json(&self) -> String {
        self.config.clone()
    }
}

#[pymodule]
fn _wgfit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Model>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("BackupMismatch", py.get_type::<BackupMismatch>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("GpuError", py.get_type::<GpuError>())?;
    m.add("Preempted", py.get_type::<Preempted>())?;
    m.add_function(wrap_pyfunction!(arrays::dataset_x_address, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
