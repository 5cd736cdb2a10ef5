//! `wgfit convert`: a CSV data set, or a folder of class sub-folders of images, to a
//! safetensors file that training maps instead of parsing.

use crate::{CliResult, Failure};
use clap::Args;
use std::path::PathBuf;
use wgfit::data::{ColorMode, ImageOptions};
use wgfit::{CsvOptions, CsvTargets};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  wgfit convert mnist.csv mnist.safetensors --scale 0.00392
      784 pixel columns and a label per row; training then maps the file (no parsing, no copy)
  wgfit train --data mnist.safetensors --layers 128,10

The conversion streams: memory stays at one line plus the labels, whatever the file's size.
  wgfit convert photos/ photos.safetensors --image-size 64,64 --scale 0.00392
      photos/<class>/<image>: PNG, JPEG, GIF or BMP images resized to 64x64, RGB, x of shape
      [n, 64, 64, 3]; the classes are the sub-folders' names, sorted (label 0 first)
  wgfit convert book.txt book.safetensors --seq-len 64 --stride 8
      the text's characters as ids (its vocabulary recorded in the file): x [n, 64] a window
      every 8 characters, and the next characters y [n, 64], in the text's order; `wgfit
      generate` writes with a model trained on it

The conversion streams: memory stays at one line (or one image) plus the labels, whatever the
input's size. Errors name the row and column, as `wgfit train --data file.csv` would, or the
image file.")]
pub struct ConvertArgs {
    /// The CSV file (plain or gzip; class label in the last column; a header line is detected),
    /// or a folder of class sub-folders of images (with --image-size)
    pub input: PathBuf,
    /// The safetensors file to write (tensors `x` F32 [n, features] or [n, H, W, C], and `y`)
    pub output: PathBuf,
    /// Multiply every input by F (e.g. 0.00392 for pixels of 0..255), once, here
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub scale: f32,
    /// The last N columns are float targets (regression) instead of one class label
    #[arg(long, value_name = "N")]
    pub targets: Option<usize>,
    /// Resize every image of the folder INPUT to H rows by W columns
    #[arg(long, value_name = "H,W", value_parser = parse_image_size)]
    pub image_size: Option<(u32, u32)>,
    /// Channels of each image: grayscale (1), rgb (3, the default) or rgba (4), as Keras's
    /// color_mode
    #[arg(long, value_name = "MODE", value_parser = parse_color_mode)]
    pub color_mode: Option<ColorMode>,
    /// The seed of the order the images are written in (0 by default; shuffled as Keras does,
    /// so that --validation-split, which takes the last samples, holds every class)
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Write the images sorted by class and file name instead
    #[arg(long)]
    pub no_shuffle: bool,
    /// Convert the UTF-8 text file INPUT (a .txt file) to character sequences of T
    /// characters, each with the next character of every position as its labels
    #[arg(long, value_name = "T")]
    pub seq_len: Option<usize>,
    /// With --seq-len: a sequence every S characters [default: T, no character twice; 1
    /// gives windows at every offset]
    #[arg(long, value_name = "S")]
    pub stride: Option<usize>,
}

fn parse_image_size(text: &str) -> Result<(u32, u32), String> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [h, w] = parts[..] else {
        return Err(format!(
            "{text:?}: give the height and width as H,W (e.g. 28,28)"
        ));
    };
    let number = |s: &str| match s.parse::<u32>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(format!("{text:?}: {s:?} is not a size of 1 or more")),
    };
    Ok((number(h)?, number(w)?))
}

fn parse_color_mode(text: &str) -> Result<ColorMode, String> {
    match text {
        "grayscale" => Ok(ColorMode::Grayscale),
        "rgb" => Ok(ColorMode::Rgb),
        "rgba" => Ok(ColorMode::Rgba),
        _ => Err(format!("{text:?}: give grayscale, rgb or rgba")),
    }
}

pub fn run(args: ConvertArgs) -> CliResult {
    crate::arg_checks::check_scale(Some(args.scale))?;
    if let Some(n) = args.targets {
        crate::arg_checks::check_at_least_one("--targets", n)?;
    }
    let text = args
        .input
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    if text || args.seq_len.is_some() {
        return convert_text(args);
    }
    if let Some(s) = args.stride {
        return Err(crate::arg_checks::usage(format!(
            "--stride {s}: for a text with --seq-len only"
        )));
    }
    if args.input.is_dir() {
        return convert_images(args);
    }
    // A missing input is named as missing before any flag is found out of place.
    crate::arg_checks::check_stream_input("INPUT", &args.input)?;
    let image_flag = [
        args.image_size
            .map(|(h, w)| format!("--image-size {h},{w}")),
        args.color_mode
            .map(|m| format!("--color-mode {}", m.name())),
        args.seed.map(|s| format!("--seed {s}")),
        args.no_shuffle.then(|| "--no-shuffle".to_string()),
    ];
    if let Some(flag) = image_flag.into_iter().flatten().next() {
        return Err(crate::arg_checks::usage(format!(
            "{flag}: INPUT {} is not a folder of class sub-folders of images (the flag is for \
             those only)",
            args.input.display()
        )));
    }
    crate::arg_checks::check_stream_input("INPUT", &args.input)?;
    crate::arg_checks::check_output("OUTPUT", &args.output)?;
    crate::arg_checks::refuse_overwriting_input("OUTPUT", &args.output, "INPUT", &args.input)?;
    let options = CsvOptions {
        targets: args.targets.map_or(CsvTargets::Class, CsvTargets::Values),
        ..Default::default()
    };
    remove_temporary_on_signal(&args.output)?;
    let size = std::fs::metadata(&args.input).map(|m| m.len()).unwrap_or(0);
    let bar = crate::byte_progress(size, "converting");
    let converted =
        wgfit::data::convert_csv(&args.input, &args.output, &options, args.scale, |read| {
            bar.set_position(read.min(size))
        });
    bar.finish_and_clear();
    let c = converted?;
    println!(
        "wrote {}: {} samples x {} features, {} ({} bytes)",
        args.output.display(),
        c.samples,
        c.features,
        if c.classes {
            "class labels".to_string()
        } else {
            format!("{} target columns", c.target_cols)
        },
        c.bytes
    );
    Ok(())
}

/// `wgfit convert text.txt --seq-len T`: a text as character sequences.
fn convert_text(args: ConvertArgs) -> CliResult {
    let usage = crate::arg_checks::usage;
    let input = args.input.display();
    let Some(seq_len) = args.seq_len else {
        return Err(usage(format!(
            "INPUT {input} is a text: give --seq-len T to cut it into sequences of T characters"
        )));
    };
    crate::arg_checks::check_at_least_one("--seq-len", seq_len)?;
    let stride = args.stride.unwrap_or(seq_len);
    crate::arg_checks::check_at_least_one("--stride", stride)?;
    let other_flag = [
        args.targets.map(|n| format!("--targets {n}")),
        (args.scale != 1.0).then(|| format!("--scale {}", args.scale)),
        args.image_size
            .map(|(h, w)| format!("--image-size {h},{w}")),
        args.color_mode
            .map(|m| format!("--color-mode {}", m.name())),
        args.seed.map(|s| format!("--seed {s}")),
        args.no_shuffle.then(|| "--no-shuffle".to_string()),
    ];
    if let Some(flag) = other_flag.into_iter().flatten().next() {
        return Err(usage(format!(
            "{flag}: not for a text (INPUT {input} with --seq-len), whose inputs are character \
             ids in the text's order"
        )));
    }
    crate::arg_checks::check_stream_input("INPUT", &args.input)?;
    crate::arg_checks::check_output("OUTPUT", &args.output)?;
    crate::arg_checks::refuse_overwriting_input("OUTPUT", &args.output, "INPUT", &args.input)?;
    remove_temporary_on_signal(&args.output)?;
    let c = wgfit::data::convert_text(&args.input, &args.output, seq_len, stride)?;
    println!(
        "wrote {}: {} sequences of {seq_len} characters, a vocabulary of {} ({} bytes)",
        args.output.display(),
        c.samples,
        c.class_names.len(),
        c.bytes
    );
    Ok(())
}

/// `wgfit convert DIR`: the images of DIR's class sub-folders.
fn convert_images(args: ConvertArgs) -> CliResult {
    let usage = crate::arg_checks::usage;
    let Some((height, width)) = args.image_size else {
        return Err(usage(format!(
            "INPUT {} is a folder: give --image-size H,W to convert its images",
            args.input.display()
        )));
    };
    if args.targets.is_some() {
        return Err(usage(
            "--targets: the labels of images are their folders' classes; drop the flag".into(),
        ));
    }
    crate::arg_checks::check_output("OUTPUT", &args.output)?;
    let options = ImageOptions {
        height,
        width,
        color_mode: args.color_mode.unwrap_or_default(),
        shuffle: (!args.no_shuffle).then_some(args.seed.unwrap_or(0)),
    };
    remove_temporary_on_signal(&args.output)?;
    let bar = image_progress();
    let converted = wgfit::data::convert_images(
        &args.input,
        &args.output,
        &options,
        args.scale,
        |done, n| {
            bar.set_length(n as u64);
            bar.set_position(done as u64)
        },
    );
    bar.finish_and_clear();
    let c = converted?;
    println!(
        "wrote {}: {} images of {} ({} classes: {}), {} bytes",
        args.output.display(),
        c.samples,
        c.input_shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join("x"),
        c.class_names.len(),
        c.class_names.join(", "),
        c.bytes
    );
    Ok(())
}

/// A bar of the images converted, on a terminal only.
fn image_progress() -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("converting {pos}/{len} images {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    )
}

/// On SIGINT or SIGTERM, removes the temporary the conversion writes (a partial file of use to
/// nobody) and exits with 128 + the signal number. A SIGKILL cannot be caught: the next
/// conversion to the same name removes what it left.
fn remove_temporary_on_signal(output: &std::path::Path) -> CliResult {
    use std::os::unix::ffi::OsStrExt;
    let Some(temporary) = wgfit::data::temporary_of(output) else {
        return Ok(());
    };
    let Ok(temporary) = std::ffi::CString::new(temporary.as_os_str().as_bytes()) else {
        return Ok(());
    };
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let temporary = temporary.clone();
        // SAFETY: the action calls only unlink(2) and _exit(2), both async-signal-safe, on a
        // string made beforehand.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                libc::unlink(temporary.as_ptr());
                libc::_exit(128 + signal);
            })
        };
        registered.map_err(|e| Failure::new(format!("cannot install a signal handler: {e}")))?;
    }
    Ok(())
}
