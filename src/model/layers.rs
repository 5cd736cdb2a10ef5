//! The layers a [`crate::Sequential`] model stacks, as builders with Keras 3's names,
//! arguments and defaults: [`Conv2D`], [`MaxPooling2D`], [`AveragePooling2D`],
//! [`GlobalAveragePooling2D`], [`Flatten`], [`Reshape`], [`Dropout`], [`ActivationLayer`]
//! (and [`crate::Dense`] in `dense.rs`). Each becomes a [`Layer`]; the engine runs its
//! [`LayerSpec`].

use crate::layer::{Activation, LayerKind, LayerSpec, Padding};

/// One layer of a [`crate::Sequential`] model, whatever its kind.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    kind: LayerKind,
    activation: Activation,
    /// Dense's units.
    #[serde(default, skip_serializing_if = "is_zero")]
    units: usize,
    /// Reshape's target shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    target: Vec<usize>,
    /// The tensors it reads in a graph (see [`LayerSpec::sources`]); empty in a stack.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sources: Vec<usize>,
    /// The earlier layer whose weights it uses (see [`LayerSpec::shares`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shares: Option<usize>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Layer {
    pub(super) fn of(kind: LayerKind) -> Self {
        Layer {
            kind,
            activation: Activation::Linear,
            units: 0,
            target: Vec::new(),
            sources: Vec::new(),
            shares: None,
        }
    }

    /// The layer reading the tensors `sources` of a graph (0 the model's input, `i + 1` the
    /// output of layer `i`): what [`crate::Model::new`] sets.
    pub fn reading(mut self, sources: &[usize]) -> Self {
        self.sources = sources.to_vec();
        self
    }

    /// The tensors it reads in a graph; empty in a stack (the previous layer's output).
    pub fn sources(&self) -> &[usize] {
        &self.sources
    }

    /// The layer using the weights of layer `owner`, an earlier call of the same layer in a
    /// graph (what [`crate::Model::new`] sets for a [`crate::Shared`] layer called again).
    pub fn sharing_weights_of(mut self, owner: usize) -> Self {
        self.shares = Some(owner);
        self
    }

    /// The earlier layer whose weights it uses, if it is a second call of a shared layer.
    pub fn shares(&self) -> Option<usize> {
        self.shares
    }

    /// What the layer computes.
    pub fn kind(&self) -> &LayerKind {
        &self.kind
    }

    /// Its activation (linear for kinds without one).
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The layer on inputs of `in_shape`, or why it cannot take them.
    pub fn spec(&self, in_shape: &[usize]) -> std::result::Result<LayerSpec, String> {
        let mut spec = match self.kind {
            LayerKind::Reshape => LayerSpec::reshape(in_shape, &self.target),
            _ => LayerSpec::new(self.kind.clone(), in_shape, self.activation, self.units),
        }?;
        spec.sources = self.sources.clone();
        spec.shares = self.shares;
        Ok(spec)
    }
}

impl From<crate::Dense> for Layer {
    fn from(d: crate::Dense) -> Self {
        Layer {
            activation: d.activation,
            units: d.units,
            ..Layer::of(LayerKind::Dense)
        }
    }
}

/// Keras's `Conv2D`: `filters` output channels from `kernel_size` windows, stride 1, padding
/// `valid`, dilation 1, a bias, linear; Glorot-uniform kernel and zero bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2D {
    filters: usize,
    kernel: [usize; 2],
    strides: [usize; 2],
    padding: Padding,
    dilation: [usize; 2],
    use_bias: bool,
    activation: Activation,
}

impl Conv2D {
    /// `filters` channels from square `kernel_size` windows.
    pub fn new(filters: usize, kernel_size: usize) -> Self {
        Conv2D {
            filters,
            kernel: [kernel_size; 2],
            strides: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            use_bias: true,
            activation: Activation::Linear,
        }
    }

    /// A `[height, width]` window.
    pub fn kernel_size(mut self, kernel: [usize; 2]) -> Self {
        self.kernel = kernel;
        self
    }

    /// `[height, width]` strides.
    pub fn strides(mut self, strides: [usize; 2]) -> Self {
        self.strides = strides;
        self
    }

    /// `valid` or `same`.
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// `[height, width]` dilation.
    pub fn dilation_rate(mut self, dilation: [usize; 2]) -> Self {
        self.dilation = dilation;
        self
    }

    /// Whether a bias is added (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// The activation after the bias.
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }
}

impl From<Conv2D> for Layer {
    fn from(c: Conv2D) -> Self {
        Layer {
            activation: c.activation,
            ..Layer::of(LayerKind::Conv2D {
                filters: c.filters,
                kernel: c.kernel,
                strides: c.strides,
                padding: c.padding,
                dilation: c.dilation,
                use_bias: c.use_bias,
            })
        }
    }
}

/// A pooling window's arguments: Keras's `pool_size`, `strides` (default: the pool size) and
/// `padding` (default `valid`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pool2D {
    pool: [usize; 2],
    strides: Option<[usize; 2]>,
    padding: Padding,
}

impl Pool2D {
    fn new(pool: [usize; 2]) -> Self {
        Pool2D {
            pool,
            strides: None,
            padding: Padding::Valid,
        }
    }

    fn strides_or_pool(&self) -> [usize; 2] {
        self.strides.unwrap_or(self.pool)
    }
}

macro_rules! pooling {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq)]
        pub struct $name(Pool2D);

        impl $name {
            /// A `[height, width]` window, moved by its own size.
            pub fn new(pool_size: [usize; 2]) -> Self {
                $name(Pool2D::new(pool_size))
            }

            /// `[height, width]` strides (default: the pool size).
            pub fn strides(mut self, strides: [usize; 2]) -> Self {
                self.0.strides = Some(strides);
                self
            }

            /// `valid` or `same`.
            pub fn padding(mut self, padding: Padding) -> Self {
                self.0.padding = padding;
                self
            }
        }

        impl From<$name> for Layer {
            fn from(p: $name) -> Self {
                Layer::of(LayerKind::$name {
                    pool: p.0.pool,
                    strides: p.0.strides_or_pool(),
                    padding: p.0.padding,
                })
            }
        }
    };
}

pooling!(
    /// Keras's `MaxPooling2D`: the largest value of each window, per channel.
    MaxPooling2D
);
pooling!(
    /// Keras's `AveragePooling2D`: the mean of each window, per channel.
    AveragePooling2D
);

/// Keras's `GlobalAveragePooling2D`: `[H, W, C]` to `[C]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct GlobalAveragePooling2D;

impl From<GlobalAveragePooling2D> for Layer {
    fn from(_: GlobalAveragePooling2D) -> Self {
        Layer::of(LayerKind::GlobalAveragePooling2D)
    }
}

/// Keras's `Flatten`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Flatten;

impl From<Flatten> for Layer {
    fn from(_: Flatten) -> Self {
        Layer::of(LayerKind::Flatten)
    }
}

/// Keras's `Reshape(target_shape)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reshape(Vec<usize>);

impl Reshape {
    /// To `target_shape` (per sample, as many elements as the input).
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape(target_shape.to_vec())
    }
}

impl From<Reshape> for Layer {
    fn from(r: Reshape) -> Self {
        Layer {
            target: r.0,
            ..Layer::of(LayerKind::Reshape)
        }
    }
}

/// Keras's `Dropout(rate)`: in training each element is zeroed with probability `rate` and
/// the rest scaled by `1 / (1 - rate)`; nothing in evaluation and prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout(f32);

impl Dropout {
    /// Drops the fraction `rate` (in `[0, 1)`).
    pub fn new(rate: f32) -> Self {
        Dropout(rate)
    }
}

impl From<Dropout> for Layer {
    fn from(d: Dropout) -> Self {
        Layer::of(LayerKind::Dropout { rate: d.0 })
    }
}

/// The setters both normalizations share: `epsilon`, `center` and `scale`.
macro_rules! normalization_setters {
    () => {
        /// Added to the variance.
        pub fn epsilon(mut self, epsilon: f32) -> Self {
            self.epsilon = epsilon;
            self
        }

        /// Whether `beta` is added.
        pub fn center(mut self, center: bool) -> Self {
            self.center = center;
            self
        }

        /// Whether `gamma` multiplies.
        pub fn scale(mut self, scale: bool) -> Self {
            self.scale = scale;
            self
        }
    };
}

/// Keras's `BatchNormalization()` on the last axis: momentum 0.99, epsilon 0.001, `beta` and
/// `gamma`; `moving_mean` and `moving_variance` are state saved with the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormalization {
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            momentum: 0.99,
            epsilon: 0.001,
            center: true,
            scale: true,
        }
    }
}

impl BatchNormalization {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Weight of the old moving statistics.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    normalization_setters!();
}

impl From<BatchNormalization> for Layer {
    fn from(b: BatchNormalization) -> Self {
        Layer::of(LayerKind::BatchNormalization {
            momentum: b.momentum,
            epsilon: b.epsilon,
            center: b.center,
            scale: b.scale,
        })
    }
}

/// Keras's `LayerNormalization()` on the last axis: epsilon 0.001, `beta` and `gamma`. Each
/// sample is normalized by its own statistics, in training and prediction alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormalization {
    epsilon: f32,
    center: bool,
    scale: bool,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization {
            epsilon: 0.001,
            center: true,
            scale: true,
        }
    }
}

impl LayerNormalization {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    normalization_setters!();
}

impl From<LayerNormalization> for Layer {
    fn from(n: LayerNormalization) -> Self {
        Layer::of(LayerKind::LayerNormalization {
            epsilon: n.epsilon,
            center: n.center,
            scale: n.scale,
        })
    }
}

/// Keras's `Activation(name)` layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationLayer(pub Activation);

impl From<ActivationLayer> for Layer {
    fn from(a: ActivationLayer) -> Self {
        Layer {
            activation: a.0,
            ..Layer::of(LayerKind::Activation)
        }
    }
}
