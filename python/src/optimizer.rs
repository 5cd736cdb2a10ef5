//! Keras's serialized optimizer (`keras.optimizers.serialize(opt)`, or a name such as
//! `"adam"`) as a wgfit optimizer: SGD, Adam, AdamW and RMSprop with their arguments, a
//! learning-rate schedule, `clipnorm`/`global_clipnorm`, `gradient_accumulation_steps`;
//! anything else is refused by name.

use crate::config_err;
use pyo3::PyResult;
use serde_json::Value;
use wgfit::{Adam, Clipping, Configured, LearningRateSchedule, Optimizer, RmsProp, Sgd};

/// The optimizer `text` (JSON) describes.
pub fn from_keras(text: &str) -> PyResult<Box<dyn Optimizer>> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| config_err(format!("optimizer: {e}")))?;
    let class = root["class_name"].as_str().unwrap_or("");
    let c = &root["config"];
    let number = |key: &str, default: f64| c[key].as_f64().unwrap_or(default);
    let flag = |key: &str| c[key].as_bool().unwrap_or(false);
    // Keras's defaults: SGD 0.01, the others 0.001.
    let default_lr = if class == "SGD" { 0.01 } else { 0.001 };
    let (lr, schedule) = match &c["learning_rate"] {
        Value::Object(_) => {
            let s = schedule(&c["learning_rate"])?;
            // The schedule sets every step's rate; the optimizer's own is what a backup
            // records, and must be positive (a warmup may start at 0).
            let first = f64::from(s.at(0));
            (if first > 0.0 { first } else { default_lr }, Some(s))
        }
        Value::Null => (default_lr, None),
        v => (
            v.as_f64().ok_or_else(|| {
                config_err(format!(
                    "optimizer {class}: learning_rate {v} is not a number"
                ))
            })?,
            None,
        ),
    };
    let lr = lr as f32;
    let accumulate = match &c["gradient_accumulation_steps"] {
        Value::Null => 1,
        v => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|&n| n >= 1)
            .ok_or_else(|| {
                config_err(format!(
                    "optimizer {class}: gradient_accumulation_steps {v}: give a whole number of at least 1"
                ))
            })?,
    };
    let decay = number("weight_decay", 0.0) as f32;
    for unsupported in ["use_ema", "loss_scale_factor", "clipvalue"] {
        if !(c[unsupported].is_null() || c[unsupported] == false) {
            return Err(config_err(format!(
                "optimizer {class}: wgfit has no `{unsupported}`"
            )));
        }
    }
    let clipping = match (c["clipnorm"].as_f64(), c["global_clipnorm"].as_f64()) {
        (Some(n), None) => Clipping::Norm(n as f32),
        (None, Some(n)) => Clipping::GlobalNorm(n as f32),
        (None, None) => Clipping::None,
        _ => {
            return Err(config_err(
                "optimizer: clipnorm and global_clipnorm both set",
            ));
        }
    };
    macro_rules! configured {
        ($opt:expr) => {{
            let mut o = Configured::new($opt)
                .clipping(clipping)
                .accumulate(accumulate);
            if let Some(s) = schedule {
                o = o.schedule(s);
            }
            Box::new(o) as Box<dyn Optimizer>
        }};
    }
    let adam = |a: Adam| {
        a.beta_1(number("beta_1", 0.9) as f32)
            .beta_2(number("beta_2", 0.999) as f32)
            .epsilon(number("epsilon", 1e-7) as f32)
            .amsgrad(flag("amsgrad"))
    };
    Ok(match class {
        "SGD" => configured!(
            Sgd::new(lr)
                .momentum(number("momentum", 0.0) as f32)
                .nesterov(flag("nesterov"))
                .weight_decay(decay)
        ),
        "Adam" => configured!(adam(Adam::new(lr)).weight_decay(decay)),
        "AdamW" => {
            configured!(adam(Adam::adamw(lr)).weight_decay(number("weight_decay", 0.004) as f32))
        }
        "RMSprop" => configured!(
            RmsProp::new(lr)
                .rho(number("rho", 0.9) as f32)
                .momentum(number("momentum", 0.0) as f32)
                .epsilon(number("epsilon", 1e-7) as f32)
                .centered(flag("centered"))
                .weight_decay(decay)
        ),
        other => {
            return Err(config_err(format!(
                "optimizer `{other}`: wgfit has SGD, Adam, AdamW and RMSprop"
            )));
        }
    })
}

/// Keras's serialized learning-rate schedule.
fn schedule(v: &Value) -> PyResult<LearningRateSchedule> {
    let c = &v["config"];
    let f = |k: &str| c[k].as_f64();
    let need = |k: &str| f(k).ok_or_else(|| config_err(format!("schedule: no `{k}`")));
    let steps = |k: &str| need(k).map(|n| n as u64);
    let staircase = c["staircase"].as_bool().unwrap_or(false);
    Ok(match v["class_name"].as_str().unwrap_or("") {
        "ExponentialDecay" => LearningRateSchedule::ExponentialDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: steps("decay_steps")?,
            decay_rate: need("decay_rate")?,
            staircase,
        },
        "InverseTimeDecay" => LearningRateSchedule::InverseTimeDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: steps("decay_steps")?,
            decay_rate: need("decay_rate")?,
            staircase,
        },
        "PolynomialDecay" => LearningRateSchedule::PolynomialDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: steps("decay_steps")?,
            end_learning_rate: f("end_learning_rate").unwrap_or(0.0001),
            power: f("power").unwrap_or(1.0),
            cycle: c["cycle"].as_bool().unwrap_or(false),
        },
        "CosineDecay" => LearningRateSchedule::CosineDecay {
            initial_learning_rate: need("initial_learning_rate")?,
            decay_steps: steps("decay_steps")?,
            alpha: f("alpha").unwrap_or(0.0),
            warmup_target: f("warmup_target"),
            warmup_steps: f("warmup_steps").unwrap_or(0.0) as u64,
        },
        "PiecewiseConstantDecay" => {
            let list = |k: &str| c[k].as_array().cloned().unwrap_or_default();
            LearningRateSchedule::PiecewiseConstantDecay {
                boundaries: list("boundaries")
                    .iter()
                    .filter_map(Value::as_u64)
                    .collect(),
                values: list("values").iter().filter_map(Value::as_f64).collect(),
            }
        }
        other => return Err(config_err(format!("learning-rate schedule `{other}`"))),
    })
}
