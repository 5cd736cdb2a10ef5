//! `Progress` on a `ProgressSink` (how the Python package writes to `sys.stdout`): a bar
//! redrawn by carriage returns where the sink can show one, the epochs' lines otherwise.

mod common;

use common::{data, model, options};

/// A [`wgfit::ProgressSink`] keeping what it was given.
#[derive(Debug, Clone, Default)]
struct Kept(std::sync::Arc<std::sync::Mutex<String>>);

impl wgfit::ProgressSink for Kept {
    fn write(&mut self, text: &str) {
        self.0.lock().unwrap().push_str(text);
    }
}

/// What a 2-epoch fit at `verbose` writes to a sink, drawing a bar or not.
fn written(verbose: u8, bar: bool) -> String {
    let kept = Kept::default();
    let mut progress = wgfit::Progress::new(verbose).to_sink(Box::new(kept.clone()), bar);
    model()
        .fit(&data(), options(2), &mut [&mut progress])
        .unwrap();
    kept.0.lock().unwrap().clone()
}

#[test]
fn progress_on_a_sink_redraws_a_bar_where_it_can_and_writes_the_epochs_lines() {
    let steps = data().len().div_ceil(options(1).batch_size);
    let with_bar = written(1, true);
    assert!(
        with_bar.contains("\rEpoch 1/2 [") && with_bar.contains(&format!("] {steps}/{steps} ")),
        "{with_bar:?}"
    );
    // Each epoch's line is written over its bar, padded to cover it, and ends the line.
    let lines: Vec<&str> = with_bar
        .split('\r')
        .filter(|part| part.ends_with('\n'))
        .collect();
    assert_eq!(lines.len(), 2, "{with_bar:?}");
    for (epoch, line) in lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("Epoch {}/2  {steps} batches", epoch + 1)),
            "{line:?}"
        );
    }
    for verbose in [1, 2] {
        let plain = written(verbose, false);
        assert!(!plain.contains('\r'), "{plain:?}");
        assert_eq!(plain.lines().count(), 2, "{plain:?}");
    }
    assert_eq!(written(2, true).matches('\r').count(), 0);
    assert_eq!(written(0, true), "");
}
