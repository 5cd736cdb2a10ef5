//! Trains a 64-32-10 relu network on the bundled handwritten digits and prints loss and
//! accuracy per epoch.
//!
//! Run with `cargo run --release --example quickstart`.

use wgfit::{Activation, CsvOptions, Dataset, Dense, FitOptions, Loss, Sequential, Sgd};

fn main() -> wgfit::Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz");
    let mut data = Dataset::from_csv(path, &CsvOptions::default())?;
    // Pixel values are 0..16; scale them to 0..1.
    data = Dataset::new(
        data.x().iter().map(|v| v / 16.0).collect(),
        data.features(),
        data.targets().clone(),
    )?;

    let mut model = Sequential::new(64)
        .add(Dense::new(32).activation(Activation::Relu))
        .add(Dense::new(10))
        .seed(7);
    model.compile(Loss::CrossEntropy, Sgd::new(0.1).momentum(0.9))?;
    println!("training on {}", model.adapter()?);

    let options = FitOptions {
        epochs: 30,
        batch_size: 32,
        seed: 42,
        verbose: 0,
        ..Default::default()
    };
    let history = model.fit(&data, options, &mut [])?;
    for e in history.iter() {
        println!(
            "epoch {:2}  loss {:.4}  accuracy {:.4}",
            e.epoch + 1,
            e.logs["loss"],
            e.logs["accuracy"]
        );
    }
    Ok(())
}
