//! One Keras layer's `config` as `from_keras_json` reads it: each key taken is recorded, so
//! that a key wgfit does not read must be absent or hold Keras's default, and every refusal
//! names the layer, the key and why.

use super::keras_json::bad;
use crate::error::{Error, Result};
use crate::layer::{Activation, Padding};
use serde_json::{Map, Value};

/// One layer's `config`, with the keys read so far (the rest must be absent or defaults).
pub(super) struct Config<'a> {
    pub(super) class: &'a str,
    pub(super) index: usize,
    pub(super) config: &'a Map<String, Value>,
    pub(super) read: Vec<&'static str>,
    /// The activation was `softmax`.
    pub(super) softmax: bool,
}

impl Config<'_> {
    pub(super) fn error(&self, what: impl std::fmt::Display) -> Error {
        let name = self.get("name").and_then(Value::as_str).unwrap_or("?");
        bad(format!(
            "layer {} `{name}` ({}) {what}",
            self.index, self.class
        ))
    }

    pub(super) fn get(&self, key: &str) -> Option<&Value> {
        self.config.get(key)
    }

    /// `trainable` must be true; `dtype` float32 (a string or a DTypePolicy).
    pub(super) fn check_common(&self) -> Result<()> {
        if let Some(t) = self.get("trainable")
            && t != &Value::Bool(true)
        {
            return Err(self.error("is not trainable; wgfit trains every layer"));
        }
        let dtype = match self.get("dtype") {
            None | Some(Value::Null) => return Ok(()),
            Some(Value::String(s)) => s.clone(),
            Some(v) => v
                .pointer("/config/name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string(),
        };
        if dtype != "float32" {
            return Err(self.error(format!("has dtype {dtype}; wgfit computes in float32")));
        }
        Ok(())
    }

    /// `key` must be absent or one of `allowed`.
    pub(super) fn default<V: Clone + Into<Value>>(
        &mut self,
        key: &'static str,
        allowed: &[V],
    ) -> Result<()> {
        self.read.push(key);
        match self.get(key) {
            None => Ok(()),
            Some(v) if allowed.iter().any(|a| &a.clone().into() == v) => Ok(()),
            Some(v) => Err(self.error(format!("has {key} = {v}, which wgfit does not support"))),
        }
    }

    /// `key` must be absent or `value`; `why` says what wgfit does instead.
    pub(super) fn must(&mut self, key: &'static str, value: Value, why: &str) -> Result<()> {
        self.read.push(key);
        match self.get(key) {
            None => Ok(()),
            Some(v) if *v == value => Ok(()),
            Some(v) => Err(self.error(format!("has {key} = {v}: {why}"))),
        }
    }

    pub(super) fn usize(&mut self, key: &'static str) -> Result<usize> {
        self.read.push(key);
        self.get(key)
            .and_then(Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| self.error(format!("has no whole number {key}")))
    }

    pub(super) fn bool_or(&mut self, key: &'static str, default: bool) -> Result<bool> {
        self.read.push(key);
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.error(format!("has {key} = {v}, not true or false"))),
        }
    }

    /// A `[a, b]` pair or one number for both.
    pub(super) fn pair(&mut self, key: &'static str) -> Result<[usize; 2]> {
        self.read.push(key);
        let v = self
            .get(key)
            .ok_or_else(|| self.error(format!("has no {key}")))?;
        let one = |v: &Value| v.as_u64().map(|v| v as usize);
        let pair = match v {
            Value::Array(a) if a.len() == 2 => one(&a[0]).zip(one(&a[1])).map(|(a, b)| [a, b]),
            v => one(v).map(|a| [a, a]),
        };
        pair.ok_or_else(|| self.error(format!("has {key} = {v}, not two whole numbers")))
    }

    pub(super) fn pair_or(&mut self, key: &'static str, default: [usize; 2]) -> Result<[usize; 2]> {
        match self.get(key) {
            None => {
                self.read.push(key);
                Ok(default)
            }
            Some(_) => self.pair(key),
        }
    }

    pub(super) fn padding(&mut self) -> Result<Padding> {
        self.read.push("padding");
        match self.get("padding").and_then(Value::as_str) {
            None | Some("valid") => Ok(Padding::Valid),
            Some("same") => Ok(Padding::Same),
            Some(other) => Err(self.error(format!(
                "has padding {other:?}; wgfit has \"valid\" and \"same\""
            ))),
        }
    }

    pub(super) fn channels_last(&mut self) -> Result<()> {
        self.read.push("data_format");
        match self.get("data_format") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::String(s)) if s == "channels_last" => Ok(()),
            Some(v) => Err(self.error(format!(
                "has data_format {v}; wgfit's images are channels_last"
            ))),
        }
    }

    /// `activation`: a name wgfit has; `softmax` is noted (it must be the last layer's).
    pub(super) fn activation(&mut self) -> Result<Activation> {
        self.read.push("activation");
        let name = match self.get("activation") {
            None | Some(Value::Null) => "linear",
            Some(Value::String(s)) => s.as_str(),
            Some(v) => return Err(self.error(format!("has activation {v}; give it by name"))),
        };
        if name == "softmax" {
            self.softmax = true;
            return Ok(Activation::Linear);
        }
        name.parse().map_err(|_| {
            self.error(format!(
                "has activation {name:?}; wgfit has linear, relu, tanh, sigmoid, gelu and softmax (on the last layer)"
            ))
        })
    }

    /// `axis` must be absent, -1, or `[-1]` (as Keras writes it); `why` says what wgfit does.
    pub(super) fn last_axis_only(&mut self, why: &str) -> Result<()> {
        self.read.push("axis");
        match self.get("axis") {
            None => Ok(()),
            Some(v) if *v == -1 || *v == serde_json::json!([-1]) => Ok(()),
            Some(v) => Err(self.error(format!("has axis = {v}: {why}"))),
        }
    }

    pub(super) fn number_or(&mut self, key: &'static str, default: f64) -> Result<f64> {
        self.read.push(key);
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.error(format!("has {key} = {v}, not a number"))),
        }
    }

    /// `key` must be absent or the initializer `class` (unseeded).
    pub(super) fn initializer(&mut self, key: &'static str, class: &str) -> Result<()> {
        self.read.push(key);
        if let Some(v) = self.get(key) {
            let got = v.get("class_name").and_then(Value::as_str).or(v.as_str());
            let seeded = v.pointer("/config/seed").is_some_and(|s| !s.is_null());
            if !got.is_some_and(|g| g == class || g.eq_ignore_ascii_case(&snake(class))) || seeded {
                return Err(self.error(format!(
                    "has {key} {v}; wgfit draws {class} from the run's seed (its initial weights can also be given with --init)"
                )));
            }
        }
        Ok(())
    }

    /// Keras's default initializers, and no regularizers or constraints.
    pub(super) fn weights_defaults(&mut self) -> Result<()> {
        self.initializer("kernel_initializer", "GlorotUniform")?;
        self.initializer("bias_initializer", "Zeros")?;
        for key in [
            "kernel_regularizer",
            "bias_regularizer",
            "activity_regularizer",
            "kernel_constraint",
            "bias_constraint",
        ] {
            self.must(
                key,
                Value::Null,
                "regularizers and constraints are not supported",
            )?;
        }
        Ok(())
    }

    /// Every key of the config was read.
    pub(super) fn finish(&self) -> Result<()> {
        for key in self.config.keys() {
            if !self.read.contains(&key.as_str()) {
                return Err(self.error(format!(
                    "has the argument {key} = {}, which wgfit does not support",
                    self.config[key]
                )));
            }
        }
        Ok(())
    }
}

/// `GlorotUniform` as `glorot_uniform`.
fn snake(class: &str) -> String {
    let mut out = String::new();
    for (i, ch) in class.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}
