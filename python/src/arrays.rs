//! NumPy arrays read in place: the Python half hands over a C-contiguous, aligned float32
//! array (converting only what is not one already), and the data set reads its memory through
//! NumPy's `__array_interface__` while holding a reference that keeps the array alive.

use crate::{DataError, py_err};
use pyo3::prelude::*;
use wgfit::{Dataset, SharedValues, Targets};

/// A float32 array's values, read where NumPy keeps them.
struct NumpyValues {
    /// Keeps the array (and so its memory) alive for as long as the values are read.
    _array: Py<PyAny>,
    address: usize,
    len: usize,
}

impl SharedValues for NumpyValues {
    fn values(&self) -> &[f32] {
        // SAFETY: `from_array` checked that `address` is the start of an aligned, C-contiguous
        // block of `len` native float32 values, which `_array` keeps alive: NumPy frees an
        // array's memory only when its last reference goes.
        unsafe { std::slice::from_raw_parts(self.address as *const f32, self.len) }
    }
}

impl NumpyValues {
    /// The values of `array`, which must be a C-contiguous, aligned, native float32 NumPy
    /// array (the Python half makes it one); anything else is a `DataError`, never a wrong read.
    fn from_array(array: &Bound<'_, PyAny>) -> PyResult<Self> {
        let interface = array.getattr("__array_interface__").map_err(|_| {
            DataError::new_err("x must be a NumPy array (it has no __array_interface__)")
        })?;
        let typestr: String = interface.get_item("typestr")?.extract()?;
        let contiguous = interface.get_item("strides")?.is_none();
        let shape: Vec<usize> = interface.get_item("shape")?.extract()?;
        let (address, _read_only): (usize, bool) = interface.get_item("data")?.extract()?;
        let native = if cfg!(target_endian = "little") {
            "<f4"
        } else {
            ">f4"
        };
        if typestr != native || !contiguous || address == 0 || !address.is_multiple_of(4) {
            return Err(DataError::new_err(format!(
                "x must be a C-contiguous, aligned float32 array, not {typestr} \
                 (contiguous: {contiguous})"
            )));
        }
        let len = shape.iter().product();
        Ok(NumpyValues {
            _array: array.clone().unbind(),
            address,
            len,
        })
    }
}

/// The values of `x` (a float32 array) as a slice, for a call that ends before
/// `x` can go.
pub fn with_rows<T>(x: &Bound<'_, PyAny>, run: impl FnOnce(&[f32]) -> T) -> PyResult<T> {
    let values = NumpyValues::from_array(x)?;
    Ok(run(values.values()))
}

/// A data set reading `x` (a float32 array, `rows` rows) in place, with targets `y`: int
/// labels (`"int"`: uint32 bytes, one per row or per position) or float32 targets (`"float"`).
pub fn dataset(
    x: &Bound<'_, PyAny>,
    rows: usize,
    y: &[u8],
    y_kind: &str,
    y_cols: usize,
) -> PyResult<Dataset> {
    let values = NumpyValues::from_array(x)?;
    if rows == 0 || !values.len.is_multiple_of(rows) {
        return Err(DataError::new_err(format!(
            "x holds {} values, not {rows} rows",
            values.len
        )));
    }
    let features = values.len / rows;
    let targets = match y_kind {
        "int" => {
            let labels: Vec<u32> = bytemuck::pod_collect_to_vec(y);
            match y_cols {
                1 => Targets::Classes(labels),
                positions => Targets::Tokens { labels, positions },
            }
        }
        "float" => Targets::Values {
            data: bytemuck::pod_collect_to_vec(y),
            cols: y_cols,
        },
        other => return Err(DataError::new_err(format!("y of kind {other}"))),
    };
    Dataset::from_shared(Box::new(values), features, targets).map_err(py_err)
}

/// Where a data set made from `x` (a float32 array of `rows` rows) reads its inputs: the
/// array's own address when it is read in place, as the tests check.
#[pyfunction]
pub fn dataset_x_address(x: &Bound<'_, PyAny>, rows: usize) -> PyResult<usize> {
    let labels = vec![0u32; rows];
    Ok(dataset(x, rows, bytemuck::cast_slice(&labels), "int", 1)?.x_address() as usize)
}
