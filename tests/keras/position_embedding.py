"""keras_hub's PositionEmbedding for the Keras scripts here (keras_hub itself needs TensorFlow)."""
import keras


@keras.saving.register_keras_serializable(package="keras_hub")
class PositionEmbedding(keras.layers.Layer):
    """keras_hub's PositionEmbedding (the same config and weight; keras_hub itself needs
    TensorFlow): a learned [sequence_length, width] table, one row per position."""

    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length,
                       "initializer": keras.initializers.serialize(self.initializer)})
        return config

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings", shape=[self.sequence_length, input_shape[-1]],
            initializer=self.initializer, trainable=True)

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        table = keras.ops.convert_to_tensor(self.position_embeddings)
        table = keras.ops.slice(table, (0, 0), (shape[-2], shape[-1]))
        return keras.ops.broadcast_to(table, shape)
