"""TensorFlow tutorial tutorials/keras/save_and_load ("Save and load models"), ported to cnnx
(`tf.keras.X` -> `cnnx.X`). tf.train.latest_checkpoint has no cnnx form: the newest file is
found with os.listdir. The SavedModel part has no cnnx form either."""

import os

import cnnx

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: fewer epochs

(train_images, train_labels), (test_images, test_labels) = cnnx.datasets.mnist.load_data()

train_labels = train_labels[:1000]
test_labels = test_labels[:1000]

train_images = train_images[:1000].reshape(-1, 28 * 28) / 255.0
test_images = test_images[:1000].reshape(-1, 28 * 28) / 255.0


# Define a simple sequential model
def create_model():
    model = cnnx.Sequential(
        [
            cnnx.layers.Dense(512, activation="relu", input_shape=(784,)),
            cnnx.layers.Dropout(0.2),
            cnnx.layers.Dense(10),
        ]
    )

    model.compile(
        optimizer="adam",
        loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[cnnx.metrics.SparseCategoricalAccuracy()],
    )

    return model


# Create a basic model instance
model = create_model()

# Display the model's architecture
model.summary()

checkpoint_path = "training_1/cp.weights.h5"  # Since you're only saving weights, you should use the .weights.h5 extension. If you're saving the whole model, you would use the .keras extension instead
checkpoint_dir = os.path.dirname(checkpoint_path)

# Create a callback that saves the model's weights
cp_callback = cnnx.callbacks.ModelCheckpoint(filepath=checkpoint_path, save_weights_only=True, verbose=1)

# Train the model with the new callback
model.fit(
    train_images,
    train_labels,
    epochs=3 if QUICK else 10,  # cnnx test
    validation_data=(test_images, test_labels),
    callbacks=[cp_callback],
)  # Pass callback to training

print(os.listdir(checkpoint_dir))

# Create a basic model instance
model = create_model()

# Evaluate the model
loss, acc = model.evaluate(test_images, test_labels, verbose=2)
print("Untrained model, accuracy: {:5.2f}%".format(100 * acc))

# Loads the weights
model.load_weights(checkpoint_path)

# Re-evaluate the model
loss, acc = model.evaluate(test_images, test_labels, verbose=2)
print("Restored model, accuracy: {:5.2f}%".format(100 * acc))
assert acc > 0.6  # cnnx test

# Include the epoch in the file name (uses `str.format`)
checkpoint_path = "training_2/cp-{epoch:04d}.weights.h5"
checkpoint_dir = os.path.dirname(checkpoint_path)
os.mkdir(checkpoint_dir)

batch_size = 32

# Calculate the number of batches per epoch
import math

n_batches = len(train_images) / batch_size
n_batches = math.ceil(n_batches)  # round up the number of batches to the nearest whole integer

# Create a callback that saves the model's weights every 5 epochs
cp_callback = cnnx.callbacks.ModelCheckpoint(
    filepath=checkpoint_path, verbose=1, save_weights_only=True, save_freq=5 * n_batches
)

# Create a new model instance
model = create_model()

# Save the weights using the `checkpoint_path` format
model.save_weights(checkpoint_path.format(epoch=0))

# Train the model with the new callback
model.fit(
    train_images,
    train_labels,
    epochs=10 if QUICK else 50,  # cnnx test
    batch_size=batch_size,
    callbacks=[cp_callback],
    validation_data=(test_images, test_labels),
    verbose=0,
)

print(sorted(os.listdir(checkpoint_dir)))
# cnnx test: epoch 0 by hand, then every 5 epochs (save_freq counts batches, so {epoch} is the epoch in progress)
assert len(os.listdir(checkpoint_dir)) == (3 if QUICK else 11), os.listdir(checkpoint_dir)
latest = os.path.join(checkpoint_dir, sorted(os.listdir(checkpoint_dir))[-1])  # cnnx test: tf.train.latest_checkpoint

# Create a new model instance
model = create_model()

# Load the previously saved weights
model.load_weights(latest)

# Re-evaluate the model
loss, acc = model.evaluate(test_images, test_labels, verbose=2)
print("Restored model, accuracy: {:5.2f}%".format(100 * acc))

# Save the weights
os.makedirs("./checkpoints", exist_ok=True)  # cnnx test: Keras 3.15's save_weights does not make it either
model.save_weights("./checkpoints/my_checkpoint.weights.h5")

# Create a new model instance
model = create_model()

# Restore the weights
model.load_weights("./checkpoints/my_checkpoint.weights.h5")

# Evaluate the model
loss, acc = model.evaluate(test_images, test_labels, verbose=2)
print("Restored model, accuracy: {:5.2f}%".format(100 * acc))

# Create and train a new model instance.
model = create_model()
model.fit(train_images, train_labels, epochs=5)

# Save the entire model as a `.keras` zip archive.
model.save("my_model.keras")

new_model = cnnx.models.load_model("my_model.keras")

# Show the model architecture
new_model.summary()

# Evaluate the restored model
loss, acc = new_model.evaluate(test_images, test_labels, verbose=2)
print("Restored model, accuracy: {:5.2f}%".format(100 * acc))

print(new_model.predict(test_images).shape)

# Create and train a new model instance.
model = create_model()
model.fit(train_images, train_labels, epochs=5)

# Save the entire model to a HDF5 file.
# The '.h5' extension indicates that the model should be saved to HDF5.
model.save("my_model.h5")

# Recreate the exact same model, including its weights and the optimizer
new_model = cnnx.models.load_model("my_model.h5")

# Show the model architecture
new_model.summary()

loss, acc = new_model.evaluate(test_images, test_labels, verbose=2)
print("Restored model, accuracy: {:5.2f}%".format(100 * acc))
print("save_and_load: done")
