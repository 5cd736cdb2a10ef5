//! `wgfit convert DIR --image-size H,W`: a folder of class sub-folders of images, as Keras's
//! `image_dataset_from_directory` reads it, becomes `x` `[n, H, W, C]`, `y` and the class
//! names; the bundled digits drawn as PNG files train a Keras convnet through it; every bad
//! folder or image is an error that names it and leaves no output.

mod common;

use common::cli::{assert_ok, stderr, stdout, summary_value, wgfit};
use std::path::Path;

/// Pixels of a `w`×`h` RGB image whose values say where they are.
fn pattern(w: u32, h: u32, seed: u8) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            seed.wrapping_add((x * 20) as u8),
            seed.wrapping_add((y * 30) as u8),
            seed.wrapping_mul(7),
        ])
    })
}

fn save(image: &image::RgbImage, path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image.save(path).unwrap();
}

/// The tensors of a converted file: x's shape and values, y, and the metadata.
fn read(path: &Path) -> (Vec<usize>, Vec<f32>, Vec<u32>, serde_json::Value) {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap_or_default();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let x = file.tensor("x").unwrap();
    let y = file.tensor("y").unwrap();
    let values = bytemuck::pod_collect_to_vec::<u8, f32>(x.data());
    let labels = bytemuck::pod_collect_to_vec::<u8, u32>(y.data());
    let names = serde_json::from_str(&meta["class_names"]).unwrap();
    (x.shape().to_vec(), values, labels, names)
}

/// `wgfit convert images x.safetensors` in `dir`, sized `size` (`H,W`), unshuffled.
fn convert_in_order(dir: &Path, size: &str) -> std::process::Output {
    wgfit(
        dir,
        &[
            "convert",
            "images",
            "x.safetensors",
            "--image-size",
            size,
            "--no-shuffle",
        ],
    )
}

#[test]
fn classes_are_sorted_folders_and_images_are_sorted_files_with_their_exact_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    // Created out of order; a nested folder, a text file and a top-level file are there too.
    save(&pattern(5, 4, 1), &images.join("cat/b.png"));
    save(&pattern(5, 4, 2), &images.join("cat/a.PNG"));
    save(&pattern(5, 4, 3), &images.join("ant/z.png"));
    save(&pattern(5, 4, 4), &images.join("bee/more/c.png"));
    save(&pattern(5, 4, 5), &images.join("bee/d.bmp"));
    std::fs::write(images.join("cat/notes.txt"), "not an image").unwrap();
    std::fs::write(images.join("README"), "not a class").unwrap();

    let out = convert_in_order(dir.path(), "4,5");
    assert_ok(&out);
    assert!(
        stdout(&out).contains("5 images of 4x5x3 (3 classes: ant, bee, cat)"),
        "{}",
        stdout(&out)
    );
    let (shape, x, y, names) = read(&dir.path().join("x.safetensors"));
    assert_eq!(shape, [5, 4, 5, 3]);
    assert_eq!(names, serde_json::json!(["ant", "bee", "cat"]));
    // ant/z; bee/d.bmp before bee/more/c.png (folder, then name, as Keras sorts its walk);
    // cat/a.PNG, cat/b.png.
    assert_eq!(y, [0, 1, 1, 2, 2]);
    for (i, seed) in [3u8, 5, 4, 2, 1].into_iter().enumerate() {
        let want: Vec<f32> = pattern(5, 4, seed)
            .pixels()
            .flat_map(|p| p.0)
            .map(f32::from)
            .collect();
        assert_eq!(
            &x[i * 60..(i + 1) * 60],
            &want[..],
            "image {i} (seed {seed})"
        );
    }
    // By default shuffled as epoch 0 of a fit with the seed shuffles, the metadata says so.
    let out = wgfit(
        dir.path(),
        &[
            "convert",
            "images",
            "s.safetensors",
            "--image-size",
            "4,5",
            "--seed",
            "7",
        ],
    );
    assert_ok(&out);
    let (_, shuffled, labels, _) = read(&dir.path().join("s.safetensors"));
    let order = wgfit::data::epoch_permutation(7, 0, 5);
    assert_ne!(order, [0, 1, 2, 3, 4]);
    for (i, &j) in order.iter().enumerate() {
        let j = j as usize;
        assert_eq!(labels[i], y[j]);
        assert_eq!(shuffled[i * 60..(i + 1) * 60], x[j * 60..(j + 1) * 60]);
    }
}

/// As Keras's `follow_links=False`: a link to a folder is not walked (one to the parent folder
/// listed every class again under this one, 40 levels deep), a link to an image is an image.
#[test]
fn links_to_folders_are_not_walked_and_links_to_images_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    save(&pattern(3, 2, 1), &images.join("ant/z.png"));
    save(&pattern(3, 2, 2), &images.join("bee/d.png"));
    std::os::unix::fs::symlink("..", images.join("bee/up")).unwrap();
    std::os::unix::fs::symlink("../bee/d.png", images.join("ant/y.png")).unwrap();
    let out = convert_in_order(dir.path(), "2,3");
    assert_ok(&out);
    assert!(
        stdout(&out).contains("3 images of 2x3x3 (2 classes: ant, bee)"),
        "{}",
        stdout(&out)
    );
    let (_, x, y, _) = read(&dir.path().join("x.safetensors"));
    assert_eq!(y, [0, 0, 1]);
    // ant/y.png (the link, first) holds bee/d.png's pixels (last); ant/z.png its own.
    assert_eq!(x[0..18], x[36..54]);
    assert_ne!(x[0..18], x[18..36]);
}

#[test]
fn colour_modes_and_resizing_give_the_asked_shape_and_a_flat_image_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    save(
        &image::RgbImage::from_pixel(9, 7, image::Rgb([200, 100, 50])),
        &images.join("flat/one.png"),
    );
    save(&pattern(9, 7, 9), &images.join("flat/two.jpg"));
    let convert = |mode: &str, name: &str| {
        let out = wgfit(
            dir.path(),
            &[
                "convert",
                "images",
                name,
                "--image-size",
                "3,2",
                "--color-mode",
                mode,
                "--scale",
                "0.5",
                "--no-shuffle",
            ],
        );
        assert_ok(&out);
        read(&dir.path().join(name))
    };
    let (shape, x, _, _) = convert("rgb", "rgb.safetensors");
    assert_eq!(shape, [2, 3, 2, 3]);
    for pixel in x[..18].chunks(3) {
        assert_eq!(pixel, [100.0, 50.0, 25.0]);
    }
    let (shape, x, _, _) = convert("grayscale", "gray.safetensors");
    assert_eq!(shape, [2, 3, 2, 1]);
    let luma = f32::from(
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            1,
            1,
            image::Rgb([200, 100, 50]),
        ))
        .to_luma8()
        .get_pixel(0, 0)
        .0[0],
    );
    assert!(x[..6].iter().all(|&v| v == luma * 0.5), "{x:?}");
    let (shape, x, _, _) = convert("rgba", "rgba.safetensors");
    assert_eq!(shape, [2, 3, 2, 4]);
    assert_eq!(&x[..4], [100.0, 50.0, 25.0, 127.5]);
}

#[test]
fn a_bad_folder_or_image_is_an_error_naming_it_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let case = |args: &[&str], code: i32, says: &[&str]| {
        let out = wgfit(dir.path(), args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        for s in says {
            assert!(stderr(&out).contains(s), "{args:?}: {}", stderr(&out));
        }
        assert!(!dir.path().join("out.safetensors").exists(), "{args:?}");
        assert_eq!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".wgfit"))
                .count(),
            0,
            "{args:?} left a temporary"
        );
    };
    let convert = [
        "convert",
        "images",
        "out.safetensors",
        "--image-size",
        "4,4",
    ];

    std::fs::create_dir(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/loose.png"), "x").unwrap();
    case(
        &convert,
        1,
        &["no class sub-folders", "DIR/<class name>/<image>"],
    );

    std::fs::create_dir(dir.path().join("images/empty")).unwrap();
    case(&convert, 1, &["holds no data rows"]);

    save(&pattern(4, 4, 1), &dir.path().join("images/good/a.png"));
    std::fs::write(
        dir.path().join("images/good/b.png"),
        b"\x89PNG\r\n\x1a\nbroken",
    )
    .unwrap();
    case(
        &convert,
        1,
        &["images/good/b.png", "not an image wgfit can read"],
    );
    std::fs::remove_file(dir.path().join("images/good/b.png")).unwrap();

    case(
        &["convert", "images", "out.safetensors"],
        2,
        &["--image-size H,W"],
    );
    case(
        &["convert", "images", "out.safetensors", "--image-size", "4"],
        2,
        &["H,W"],
    );
    case(
        &[
            "convert",
            "images",
            "out.safetensors",
            "--image-size",
            "0,4",
        ],
        2,
        &["1 or more"],
    );
    case(
        &[
            "convert",
            "images",
            "out.safetensors",
            "--image-size",
            "100000,100000",
        ],
        1,
        &[
            "100000x100000 is 10000000000 pixels an image",
            "smaller size",
        ],
    );
    case(
        &[&convert[..], &["--targets", "1"]].concat(),
        2,
        &["--targets", "folders' classes"],
    );
    case(
        &[&convert[..], &["--color-mode", "cmyk"]].concat(),
        2,
        &["grayscale, rgb or rgba"],
    );
    std::fs::write(dir.path().join("d.csv"), "1,0\n").unwrap();
    case(
        &["convert", "d.csv", "out.safetensors", "--image-size", "4,4"],
        2,
        &["not a folder of class sub-folders"],
    );
    // What is left converts.
    assert_ok(&wgfit(dir.path(), &convert));
}

/// The bundled digits (8×8, values 0..16) drawn as grayscale PNG files in folders `0`..`9`,
/// converted, and trained on by the Keras convnet of `tests/data/keras/digits_convnet.json`.
#[test]
fn the_digits_as_png_files_train_a_keras_convnet() {
    let digits = wgfit::Dataset::load(
        format!("{}/data/digits.csv.gz", env!("CARGO_MANIFEST_DIR")),
        &wgfit::CsvOptions::default(),
    )
    .unwrap();
    let wgfit::Targets::Classes(labels) = digits.targets() else {
        panic!("the digits have class labels")
    };
    let dir = tempfile::tempdir().unwrap();
    let mut pixels_of = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        let row = &digits.x()[i * 64..(i + 1) * 64];
        let pixels: Vec<u8> = row.iter().map(|&v| (v * 15.0) as u8).collect();
        let image = image::GrayImage::from_raw(8, 8, pixels.clone()).unwrap();
        let path = dir.path().join(format!("digits/{label}/{i:04}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save(&path).unwrap();
        pixels_of.push((label, pixels));
    }
    let out = wgfit(
        dir.path(),
        &[
            "convert",
            "digits",
            "digits.safetensors",
            "--image-size",
            "8,8",
            "--color-mode",
            "grayscale",
            "--scale",
            "0.0039215686",
        ],
    );
    assert_ok(&out);
    let (shape, x, y, names) = read(&dir.path().join("digits.safetensors"));
    assert_eq!(shape, [labels.len(), 8, 8, 1]);
    assert_eq!(
        names,
        serde_json::json!(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    );
    // Class by class, file by file (a stable sort of the samples by label), then shuffled
    // with seed 0.
    pixels_of.sort_by_key(|(label, _)| *label);
    let order = wgfit::data::epoch_permutation(0, 0, pixels_of.len());
    for (i, &j) in order.iter().enumerate() {
        let (label, pixels) = &pixels_of[j as usize];
        assert_eq!(y[i], *label);
        let want: Vec<f32> = pixels
            .iter()
            .map(|&p| f32::from(p) * 0.0039215686)
            .collect();
        assert_eq!(&x[i * 64..(i + 1) * 64], &want[..], "sample {i}");
    }

    let model = format!(
        "{}/tests/data/keras/digits_convnet.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let train = wgfit(
        dir.path(),
        &[
            "train",
            "--model",
            &model,
            "--data",
            "digits.safetensors",
            "--epochs",
            "4",
            "--validation-split",
            "0.2",
            "--verbose",
            "2",
        ],
    );
    assert_ok(&train);
    let accuracy = summary_value(&stdout(&train), "val_accuracy");
    assert!(
        accuracy > 0.9,
        "val_accuracy {accuracy}: {}",
        stdout(&train)
    );
}
