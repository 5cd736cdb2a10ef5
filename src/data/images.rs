//! `wgfit convert DIR`: a folder of class sub-folders of images (the layout of Keras's
//! `image_dataset_from_directory`) turned into a safetensors file with `x` F32 `[n, H, W, C]`,
//! `y` U32 `[n]` and the class names in the metadata, one image in memory at a time.
//!
//! As Keras: the classes are the sub-folders' names, sorted, label 0 first; each class's
//! images are its files ending in `.bmp`, `.gif`, `.jpeg`, `.jpg` or `.png` (any case), in
//! sub-folders too, sorted by folder and then name; files elsewhere are ignored; each image is
//! converted to the colour mode and resized bilinearly to the size asked, its values kept as
//! 0..255 (times the scale); and the images are shuffled with a seed (Keras's default
//! `shuffle=True`), so that a `validation_split`, which takes the last samples, holds every
//! class.

use super::convert::{Converted, WriteError, write_atomically};
use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The extensions Keras's `image_dataset_from_directory` takes.
const IMAGE_EXTENSIONS: [&str; 5] = ["bmp", "gif", "jpeg", "jpg", "png"];

/// The channels each image is converted to, as Keras's `color_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// One channel.
    Grayscale,
    /// Three channels (Keras's default).
    #[default]
    Rgb,
    /// Four channels.
    Rgba,
}

impl ColorMode {
    /// Channels per pixel.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
            ColorMode::Rgba => 4,
        }
    }

    /// Keras's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            ColorMode::Grayscale => "grayscale",
            ColorMode::Rgb => "rgb",
            ColorMode::Rgba => "rgba",
        }
    }
}

/// How [`convert_images`] reads the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageOptions {
    /// Height every image is resized to.
    pub height: u32,
    /// Width every image is resized to.
    pub width: u32,
    /// Channels every image is converted to.
    pub color_mode: ColorMode,
    /// The seed of the order the images are written in (`None`: sorted by class, then file).
    pub shuffle: Option<u64>,
}

/// The most pixels an image is resized to: 8192x8192, whose 4-channel f32 values (1 GiB) are
/// already eight times the largest storage binding of lavapipe, and far past any input a
/// model here trains on; a larger size would only fail later, allocating.
pub const MAX_IMAGE_PIXELS: u64 = 1 << 26;

/// Converts the folder `input` (`input/<class>/<image>`) to a safetensors file `output`:
/// `x` F32 `[n, height, width, channels]` (pixel values times `scale`), `y` U32 `[n]` (the
/// index of the image's class among the sorted class names) and the class names as JSON in
/// the metadata key `class_names`. The images are in the order of their classes and files
/// sorted, then shuffled by `options.shuffle` (the permutation of epoch 0 of a `fit` with that
/// seed). Memory stays at one image. `progress` gets the images
/// written so far and their total. Written atomically as [`super::convert_csv`] writes.
///
/// Errors: no class sub-folder or no image ([`Error::EmptyData`]), a file that does not
/// decode as an image or a class name that is not UTF-8 ([`Error::InvalidData`], naming the
/// file), an unreadable folder ([`Error::DataIo`]), a size over [`MAX_IMAGE_PIXELS`]
/// ([`Error::Config`]).
pub fn convert_images(
    input: &Path,
    output: &Path,
    options: &ImageOptions,
    scale: f32,
    mut progress: impl FnMut(usize, usize),
) -> Result<Converted> {
    if options.height == 0 || options.width == 0 {
        return Err(Error::config(
            "image size",
            format!(
                "{}x{} has no pixels; give a height and a width of 1 or more",
                options.height, options.width
            ),
        ));
    }
    let pixels = u64::from(options.height) * u64::from(options.width);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(Error::config(
            "image size",
            format!(
                "{}x{} is {pixels} pixels an image, more than the {MAX_IMAGE_PIXELS} (8192x8192) \
                 wgfit converts; give a smaller size",
                options.height, options.width
            ),
        ));
    }
    if !(scale * 255.0).is_finite() || scale == 0.0 {
        return Err(Error::config(
            "scale",
            format!("{scale} is not usable; give a finite, non-zero factor (255 times it finite)"),
        ));
    }
    let classes = class_folders(input)?;
    let mut files = Vec::new();
    for (label, (_, folder)) in classes.iter().enumerate() {
        let mut found = Vec::new();
        image_files(folder, &mut found)?;
        found.sort_by(|a, b| (a.parent(), a.file_name()).cmp(&(b.parent(), b.file_name())));
        files.extend(found.into_iter().map(|f| (f, label as u32)));
    }
    if files.is_empty() {
        return Err(Error::EmptyData {
            path: input.to_path_buf(),
        });
    }
    if let Some(seed) = options.shuffle {
        let order = super::order::epoch_permutation(seed, 0, files.len());
        files = order
            .into_iter()
            .map(|i| files[i as usize].clone())
            .collect();
    }
    let names: Vec<String> = classes.into_iter().map(|(name, _)| name).collect();
    write_atomically(output, |file| {
        write_images(file, &files, &names, options, scale, &mut progress)
    })
}

/// The class sub-folders of `input` with their names, sorted by name.
fn class_folders(input: &Path) -> Result<Vec<(String, PathBuf)>> {
    let io = |source| Error::DataIo {
        path: input.to_path_buf(),
        source,
    };
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(input).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| Error::InvalidData {
                path: Some(path.clone()),
                reason: "a class folder's name must be UTF-8 (it is recorded as the class name)"
                    .into(),
            })?
            .to_string();
        classes.push((name, path));
    }
    if classes.is_empty() {
        return Err(Error::InvalidData {
            path: Some(input.to_path_buf()),
            reason: "no class sub-folders: lay the images out as DIR/<class name>/<image>, one \
                     folder per class"
                .into(),
        });
    }
    classes.sort();
    Ok(classes)
}

/// Appends to `found` every image file under `folder`, sub-folders included. Links to
/// folders are not followed (Keras's `follow_links=False`): one to a parent folder would list
/// its images again under this class, and two to `.` would make the walk endless.
fn image_files(folder: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::DataIo {
        path: folder.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(folder).map_err(io)? {
        let entry = entry.map_err(io)?;
        let (path, kind) = (entry.path(), entry.file_type().map_err(io)?);
        if kind.is_dir() {
            image_files(&path, found)?;
        } else if kind.is_symlink() && path.is_dir() {
            continue;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            found.push(path);
        }
    }
    Ok(())
}

/// The pixels of the image at `path`, converted and resized as `options` say.
fn read_image(path: &Path, options: &ImageOptions) -> Result<Vec<u8>> {
    let invalid = |e: &dyn std::fmt::Display| Error::InvalidData {
        path: Some(path.to_path_buf()),
        reason: format!("not an image wgfit can read: {e}"),
    };
    let image = image::ImageReader::open(path)
        .map_err(|source| Error::DataIo {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| Error::DataIo {
            path: path.to_path_buf(),
            source,
        })?
        .decode()
        .map_err(|e| invalid(&e))?;
    let (h, w) = (options.height, options.width);
    let filter = image::imageops::FilterType::Triangle;
    let fit = |image: image::DynamicImage| {
        if (image.height(), image.width()) == (h, w) {
            image
        } else {
            image.resize_exact(w, h, filter)
        }
    };
    Ok(match options.color_mode {
        ColorMode::Grayscale => fit(image::DynamicImage::ImageLuma8(image.to_luma8())).into_bytes(),
        ColorMode::Rgb => fit(image::DynamicImage::ImageRgb8(image.to_rgb8())).into_bytes(),
        ColorMode::Rgba => fit(image::DynamicImage::ImageRgba8(image.to_rgba8())).into_bytes(),
    })
}

fn write_images(
    file: File,
    files: &[(PathBuf, u32)],
    class_names: &[String],
    options: &ImageOptions,
    scale: f32,
    progress: &mut impl FnMut(usize, usize),
) -> std::result::Result<Converted, WriteError> {
    let n = files.len();
    let shape = [
        options.height as usize,
        options.width as usize,
        options.color_mode.channels(),
    ];
    let per_image = shape.iter().product::<usize>();
    let x_bytes = (n * per_image * 4) as u64;
    let y_bytes = (n * 4) as u64;
    let names = serde_json::to_string(class_names)
        .map_err(|e| WriteError::Data(Error::internal(e.to_string())))?;
    let header = serde_json::json!({
        "__metadata__": {
            "class_names": names,
            "color_mode": options.color_mode.name(),
            "order": options.shuffle.map_or("sorted".to_string(), |s| format!("shuffled with seed {s}")),
        },
        "x": {"dtype": "F32", "shape": [n, shape[0], shape[1], shape[2]], "data_offsets": [0, x_bytes]},
        "y": {"dtype": "U32", "shape": [n], "data_offsets": [x_bytes, x_bytes + y_bytes]},
    });
    let (mut out, header_len) = super::convert::start_safetensors(file, &header)?;
    let mut values = Vec::with_capacity(per_image);
    for (done, (path, _)) in files.iter().enumerate() {
        let pixels = read_image(path, options).map_err(WriteError::Data)?;
        if pixels.len() != per_image {
            return Err(WriteError::Data(Error::internal(
                "a resized image has another number of values than its size asks",
            )));
        }
        values.clear();
        values.extend(pixels.iter().map(|&p| f32::from(p) * scale));
        out.write_all(bytemuck::cast_slice(&values))?;
        progress(done + 1, n);
    }
    let labels: Vec<u32> = files.iter().map(|&(_, label)| label).collect();
    out.write_all(bytemuck::cast_slice(&labels))?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(Converted {
        samples: n,
        features: per_image,
        target_cols: 1,
        classes: true,
        bytes: 8 + header_len as u64 + x_bytes + y_bytes,
        input_shape: shape.to_vec(),
        class_names: class_names.to_vec(),
    })
}
