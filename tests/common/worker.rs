//! The worker process of the crash and fault tests: the test binary runs itself as a child
//! (its ignored `worker` test, which calls [`main`]), configured through environment
//! variables, so that a test can kill, preempt or starve a real training process.

use super::{bits, data, interrupted, model, options};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wgfit::{BackupAndRestore, Callback, Context, SaveFreq};

/// Epochs every worker trains (but LONG's).
pub const EPOCHS: usize = 6;
/// Epochs of LONG: two history chunks of 64 epochs and a few more.
pub const LONG_EPOCHS: usize = 2 * wgfit::HISTORY_CHUNK + 5;

/// Prints "training from global step <n>" once training starts (after the backup's restore,
/// which runs before it), so a test knows signals are being caught and where the run
/// resumed.
struct Announce;

const ANNOUNCED: &str = "training from global step ";

impl Callback for Announce {
    fn on_train_begin(&mut self, ctx: &mut Context<'_>) -> wgfit::Result<()> {
        println!("{ANNOUNCED}{}", ctx.position().global_step);
        Ok(())
    }
}

/// Stops the run with an error at the start of an epoch.
struct StopAtEpoch(usize);

impl Callback for StopAtEpoch {
    fn on_epoch_begin(&mut self, _ctx: &mut Context<'_>, epoch: usize) -> wgfit::Result<()> {
        if epoch == self.0 {
            return Err(interrupted());
        }
        Ok(())
    }
}

/// Sleeps after each batch so that kills spread over the run.
struct Slow(u64);

impl Callback for Slow {
    fn on_train_batch_end(&mut self, _ctx: &mut Context<'_>, _batch: usize) -> wgfit::Result<()> {
        std::thread::sleep(Duration::from_millis(self.0));
        Ok(())
    }
}

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The child process: trains `model()` with a backup, writes the final parameter bits
/// to WGFIT_WORKER_OUT, and exits 0, 128 + signal after a preemption, or 1 on an error.
pub fn main() {
    let Some(dir) = env("WGFIT_WORKER_DIR") else {
        panic!("the worker needs WGFIT_WORKER_DIR");
    };
    let code = match train_in_worker(Path::new(&dir)) {
        Ok(()) => 0,
        Err(wgfit::Error::Preempted { signal, .. }) => 128 + signal,
        Err(e) => {
            eprintln!("worker error: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn train_in_worker(dir: &Path) -> wgfit::Result<()> {
    let freq = match env("WGFIT_WORKER_FREQ").as_deref() {
        Some("epoch") | None => SaveFreq::Epoch,
        Some(n) => SaveFreq::Batches(n.parse().unwrap_or(1)),
    };
    let mut backup = BackupAndRestore::new(dir)?
        .save_before_preemption(env("WGFIT_WORKER_PREEMPT").is_some())?
        .save_freq(freq)?
        .double_checkpoint(env("WGFIT_WORKER_DOUBLE").is_some())
        .delete_checkpoint(env("WGFIT_WORKER_KEEP").is_none());
    if env("WGFIT_WORKER_READ_AHEAD").is_some() {
        backup = backup.read_ahead();
    }
    let mut stop = StopAtEpoch(
        env("WGFIT_WORKER_STOP_EPOCH").map_or(usize::MAX, |s| s.parse().unwrap_or(usize::MAX)),
    );
    let mut slow = Slow(env("WGFIT_WORKER_SLOW_MS").map_or(0, |s| s.parse().unwrap_or(0)));
    // WIDE: 4.2 M parameters plus momentum, so each save is a 34 MB file. ADAM_COSINE: Adam
    // with a cosine schedule after a warmup, whose rate and bias correction change every step.
    if env("WGFIT_WORKER_CALLBACKS").is_some() {
        // The stateful callbacks, writing beside the backup directory.
        let artifacts = PathBuf::from(format!("{}.artifacts", dir.display()));
        let outcome = super::callback_suite::run(
            &artifacts,
            &mut [&mut backup, &mut Announce, &mut stop, &mut slow],
            &mut [],
        )?;
        if let Some(out) = env("WGFIT_WORKER_OUT") {
            std::fs::write(out, outcome.to_bytes())
                .map_err(|e| wgfit::Error::ckpt_io("worker output", e))?;
        }
        return Ok(());
    }
    let mut model = if env("WGFIT_WORKER_WIDE").is_some() {
        super::wide_model()
    } else if env("WGFIT_WORKER_ADAM_COSINE").is_some() {
        adam_cosine_model()
    } else if env("WGFIT_WORKER_ACCUMULATE").is_some() {
        accumulating_model()
    } else if env("WGFIT_WORKER_CONVNET").is_some() {
        convnet_model()
    } else if env("WGFIT_WORKER_GPT").is_some() {
        gpt_model()
    } else {
        model()
    };
    // LONG: 16 samples (2 steps an epoch) for LONG_EPOCHS epochs, a history of chunks.
    let long = env("WGFIT_WORKER_LONG").is_some();
    let data = if env("WGFIT_WORKER_GPT").is_some() {
        gpt_data()
    } else if long {
        data().split_tail(74.0 / 90.0).unwrap().0
    } else {
        data()
    };
    // CONVNET: validation on the last fifth of the data too.
    let validation_split = env("WGFIT_WORKER_CONVNET").map(|_| 0.2);
    let data_on = match env("WGFIT_WORKER_DATA_ON").as_deref() {
        Some("host") => wgfit::DataOn::Host,
        _ => wgfit::DataOn::Gpu,
    };
    model.fit(
        &data,
        wgfit::FitOptions {
            data_on,
            validation_split,
            ..options(if long { LONG_EPOCHS } else { EPOCHS })
        },
        &mut [&mut backup, &mut Announce, &mut stop, &mut slow],
    )?;
    let bits: Vec<u8> = bits(&model)
        .into_iter()
        .flat_map(|(_, b)| b.into_iter().flat_map(u32::to_le_bytes))
        .collect();
    if let Some(out) = env("WGFIT_WORKER_OUT") {
        std::fs::write(out, bits).map_err(|e| wgfit::Error::ckpt_io("worker output", e))?;
    }
    Ok(())
}

/// [`model`]'s layers with SGD and momentum, updating every 3 batches from their mean gradient.
fn accumulating_model() -> wgfit::Sequential {
    let mut m = wgfit::Sequential::new(6)
        .add(wgfit::Dense::new(8).activation(wgfit::Activation::Tanh))
        .add(wgfit::Dense::new(3))
        .seed(3);
    let optimizer = wgfit::Configured::new(wgfit::Sgd::new(0.05).momentum(0.9)).accumulate(3);
    m.compile(wgfit::Loss::CrossEntropy, optimizer)
        .expect("compile");
    m
}

/// A convnet on the 6 features as 2×3×1 images: Conv2D (same padding) → BatchNormalization
/// → ReLU → Conv2D (4 channels in, 4 filters: implicit GEMMs on lavapipe) → MaxPooling2D
/// (same) → Flatten → Dropout 0.5 → Dense, with Adam on a cosine schedule after a warmup.
fn convnet_model() -> wgfit::Sequential {
    let mut m = wgfit::Sequential::with_input_shape(&[2, 3, 1])
        .add(wgfit::Conv2D::new(4, 2).padding(wgfit::Padding::Same))
        .add(wgfit::BatchNormalization::new())
        .add(wgfit::ActivationLayer(wgfit::Activation::Relu))
        .add(wgfit::Conv2D::new(4, 2).padding(wgfit::Padding::Same))
        .add(wgfit::MaxPooling2D::new([2, 2]).padding(wgfit::Padding::Same))
        .add(wgfit::Flatten)
        .add(wgfit::Dropout::new(0.5))
        .add(wgfit::Dense::new(3))
        .seed(3);
    m.compile(wgfit::Loss::CrossEntropy, adam_cosine())
        .expect("compile");
    m
}

/// 90 sequences of 6 ids below 7, each the next of a fixed rule from a random first one, with
/// the next id of every position as its labels.
fn gpt_data() -> wgfit::Dataset {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..90u32 {
        let mut id = (i * 5 + i / 7) % 7;
        for _ in 0..6 {
            x.push(id as f32);
            id = (id * 3 + 1) % 7;
            y.push(id);
        }
    }
    let targets = wgfit::Targets::Tokens {
        labels: y,
        positions: 6,
    };
    wgfit::Dataset::new(x, 6, targets).expect("valid data")
}

/// A 2-block GPT (Functional API): token and position embeddings, pre-norm causal attention
/// and a GELU MLP with Dropout 0.1 after each, AdamW exempting normalizations and biases on
/// a cosine schedule after a warmup, with global-norm clipping.
fn gpt_model() -> wgfit::Sequential {
    use wgfit::Call;
    let input = wgfit::Input::new(&[6]);
    let tokens = wgfit::Embedding::new(7, 8).call(&input);
    let mut x = tokens.add(&wgfit::PositionEmbedding::new(6).call(&tokens));
    for _ in 0..2 {
        let h = wgfit::LayerNormalization::new().call(&x);
        let h = wgfit::MultiHeadAttention::new(2, 4)
            .use_causal_mask(true)
            .call(&h);
        x = x.add(&wgfit::Dropout::new(0.1).call(&h));
        let h = wgfit::LayerNormalization::new().call(&x);
        let h = wgfit::Dense::new(16)
            .activation(wgfit::Activation::Gelu)
            .call(&h);
        let h = wgfit::Dense::new(8).call(&h);
        x = x.add(&wgfit::Dropout::new(0.1).call(&h));
    }
    let logits = wgfit::Dense::new(7).call(&wgfit::LayerNormalization::new().call(&x));
    let mut m = wgfit::Model::new(&input, &logits)
        .expect("a valid graph")
        .into_sequential()
        .seed(3);
    let adamw = wgfit::Adam::adamw(0.01)
        .weight_decay(0.05)
        .exclude_from_weight_decay(&["gamma", "beta", "bias"]);
    let schedule = wgfit::LearningRateSchedule::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 50,
        alpha: 0.1,
        warmup_target: Some(0.01),
        warmup_steps: 10,
    };
    let optimizer = wgfit::Configured::new(adamw)
        .schedule(schedule)
        .clipping(wgfit::Clipping::GlobalNorm(1.0));
    m.compile(wgfit::Loss::CrossEntropy, optimizer)
        .expect("compile");
    m
}

/// Adam on a cosine schedule after a 10-step warmup.
fn adam_cosine() -> wgfit::Configured<wgfit::Adam> {
    let schedule = wgfit::LearningRateSchedule::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 50,
        alpha: 0.1,
        warmup_target: Some(0.02),
        warmup_steps: 10,
    };
    wgfit::Configured::new(wgfit::Adam::new(0.01)).schedule(schedule)
}

/// [`model`]'s layers trained with Adam on a cosine schedule after a 10-step warmup.
fn adam_cosine_model() -> wgfit::Sequential {
    let mut m = wgfit::Sequential::new(6)
        .add(wgfit::Dense::new(8).activation(wgfit::Activation::Tanh))
        .add(wgfit::Dense::new(3))
        .seed(3);
    m.compile(wgfit::Loss::CrossEntropy, adam_cosine())
        .expect("compile");
    m
}

/// A worker process with the given settings (WGFIT_WORKER_* variables without the prefix,
/// and wgfit's own WGFIT_* variables).
pub fn spawn(dir: &Path, out: &Path, vars: &[(&str, &str)], shell_prefix: Option<&str>) -> Child {
    let exe = std::env::current_exe().unwrap();
    let args = [
        "worker",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ];
    let mut cmd = match shell_prefix {
        None => {
            let mut c = Command::new(&exe);
            c.args(args);
            c
        }
        Some(prefix) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{prefix}; exec \"$0\" \"$@\""))
                .arg(&exe)
                .args(args);
            c
        }
    };
    cmd.env("WGFIT_WORKER_DIR", dir)
        .env("WGFIT_WORKER_OUT", out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        // wgfit's own and the object store's variables pass as they are; the rest configure
        // the worker.
        if k.starts_with("WGFIT_") || k.starts_with("AWS_") {
            cmd.env(k, v);
        } else {
            cmd.env(format!("WGFIT_WORKER_{k}"), v);
        }
    }
    cmd.spawn().unwrap()
}

/// Runs a worker to its end; returns its exit code and stderr.
pub fn run_to_end(
    dir: &Path,
    out: &Path,
    vars: &[(&str, &str)],
    shell_prefix: Option<&str>,
) -> (i32, String) {
    let child = spawn(dir, out, vars, shell_prefix);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Reads the child's stdout until the worker says training began; false if it never does.
pub fn wait_for_training(child: &mut Child) -> bool {
    training_from(child).is_some()
}

/// Reads the child's stdout until the worker says training began, and returns the global
/// step it began at (after restoring its backup); None if it never does.
pub fn training_from(child: &mut Child) -> Option<u64> {
    let stdout = child.stdout.take()?;
    // (libtest prints "test worker ... " without a newline first.)
    BufReader::new(stdout).lines().find_map(|l| {
        let l = l.ok()?;
        let (_, step) = l.split_once(ANNOUNCED)?;
        step.trim().parse().ok()
    })
}

/// The final bits of an uninterrupted run in a fresh process, and how long its training
/// took (from the start of `fit`'s training to the process's exit).
pub fn reference(tmp: &Path, vars: &[(&str, &str)]) -> (Vec<u8>, Duration) {
    let out = tmp.join("reference.bin");
    let mut child = spawn(&tmp.join("reference-backup"), &out, vars, None);
    assert!(
        wait_for_training(&mut child),
        "the reference run starts training"
    );
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    let training = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (std::fs::read(out).unwrap(), training)
}

pub fn file_bytes(p: PathBuf) -> Vec<u8> {
    std::fs::read(p).unwrap()
}
