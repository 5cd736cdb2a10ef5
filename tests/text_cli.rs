//! `wgfit convert text.txt --seq-len T` and `wgfit generate` through the real binary: the
//! sequences and vocabulary written, every bad input refused by name, and a Functional GPT
//! read from Keras JSON that learns a text and continues it, reproducibly.

mod common;

use common::cli::{assert_ok, stderr, stdout, wgfit};
use wgfit::{Dataset, Targets};

/// A periodic text of 11 distinct characters, as `tests/data/keras/gpt_small.json` (T = 8,
/// a vocabulary of 11) takes.
const PHRASE: &str = "the cat hid a bag. ";

#[test]
fn a_text_becomes_next_character_sequences_with_its_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.txt"), "héllo wörld").unwrap();
    assert_ok(&wgfit(
        d,
        &["convert", "t.txt", "t.safetensors", "--seq-len", "3"],
    ));
    let data = Dataset::from_safetensors(d.join("t.safetensors")).unwrap();
    let vocabulary = wgfit::data::read_vocabulary(&d.join("t.safetensors")).unwrap();
    // Code point order: ' ' d h l o r w é ö.
    assert_eq!(vocabulary, [' ', 'd', 'h', 'l', 'o', 'r', 'w', 'é', 'ö']);
    let id = |c: char| vocabulary.iter().position(|&v| v == c).unwrap() as u32;
    let text: Vec<u32> = "héllo wörld".chars().map(id).collect();
    // 11 characters: (11 - 1) / 3 = 3 sequences.
    assert_eq!(data.len(), 3);
    let x: Vec<u32> = data.x().iter().map(|&v| v as u32).collect();
    assert_eq!(x, text[..9]);
    let Targets::Tokens { labels, positions } = data.targets() else {
        panic!("{:?}", data.targets());
    };
    assert_eq!(*positions, 3);
    assert_eq!(labels, &text[1..10]);

    // A window every 2 characters: (11 - 1 - 3) / 2 + 1 = 4 windows.
    assert_ok(&wgfit(
        d,
        &[
            "convert",
            "t.txt",
            "s.safetensors",
            "--seq-len",
            "3",
            "--stride",
            "2",
        ],
    ));
    let data = Dataset::from_safetensors(d.join("s.safetensors")).unwrap();
    assert_eq!(data.len(), 4);
    let x: Vec<u32> = data.x().iter().map(|&v| v as u32).collect();
    let Targets::Tokens { labels, .. } = data.targets() else {
        panic!("{:?}", data.targets());
    };
    for i in 0..4 {
        assert_eq!(x[i * 3..i * 3 + 3], text[2 * i..2 * i + 3]);
        assert_eq!(labels[i * 3..i * 3 + 3], text[2 * i + 1..2 * i + 4]);
    }

    // A byte-order mark before the text (Notepad's UTF-8) is not a character of it.
    std::fs::write(d.join("bom.txt"), "\u{feff}héllo wörld").unwrap();
    assert_ok(&wgfit(
        d,
        &["convert", "bom.txt", "bom.safetensors", "--seq-len", "3"],
    ));
    let bom = d.join("bom.safetensors");
    assert_eq!(
        wgfit::data::read_vocabulary(&bom).unwrap(),
        vocabulary,
        "the mark became a class"
    );
    assert_eq!(
        Dataset::from_safetensors(&bom).unwrap().x(),
        Dataset::from_safetensors(d.join("t.safetensors"))
            .unwrap()
            .x()
    );
}

#[test]
fn bad_texts_are_refused_by_name_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("latin1.txt"), b"caf\xe9 au lait").unwrap();
    std::fs::write(d.join("short.txt"), "abc").unwrap();
    for (args, named) in [
        (["latin1.txt", "o.safetensors", "--seq-len", "2"], "byte 3"),
        (
            ["short.txt", "o.safetensors", "--seq-len", "3"],
            "3 characters",
        ),
        (
            [
                "short.txt",
                "o.safetensors",
                "--seq-len",
                "18446744073709551615",
            ],
            "3 characters",
        ),
    ] {
        let mut all = vec!["convert"];
        all.extend(args);
        let o = wgfit(d, &all);
        assert_eq!(o.status.code(), Some(1), "{all:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(named), "{all:?}: {}", stderr(&o));
        assert!(!d.join("o.safetensors").exists());
    }
    // A file without a vocabulary, and a prompt outside it.
    std::fs::write(d.join("t.txt"), PHRASE.repeat(4)).unwrap();
    assert_ok(&wgfit(
        d,
        &["convert", "t.txt", "t.safetensors", "--seq-len", "8"],
    ));
    let o = wgfit(
        d,
        &[
            "generate",
            "--weights",
            "t.safetensors",
            "--data",
            "t.safetensors",
            "--prompt",
            "X",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("'X' is not in the vocabulary"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_functional_gpt_from_keras_json_learns_a_text_and_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("t.txt"), PHRASE.repeat(120)).unwrap();
    assert_ok(&wgfit(
        d,
        &["convert", "t.txt", "t.safetensors", "--seq-len", "8"],
    ));
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keras/gpt_small.json"
    );
    let o = wgfit(
        d,
        &[
            "train",
            "--data",
            "t.safetensors",
            "--model",
            model,
            "--epochs",
            "8",
            "--batch-size",
            "16",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--verbose",
            "0",
            "--output",
            "gpt.safetensors",
        ],
    );
    assert_ok(&o);
    let generate_args = |tokens| {
        [
            "generate",
            "--weights",
            "gpt.safetensors",
            "--data",
            "t.safetensors",
            "--prompt",
            "the c",
            "--tokens",
            tokens,
        ]
    };
    let generate = |extra: &[&str]| {
        let mut args = generate_args("30").to_vec();
        args.extend_from_slice(extra);
        let o = wgfit(d, &args);
        assert_ok(&o);
        stdout(&o).trim_end_matches('\n').to_string()
    };
    // predict: per row, a softmax and a class for each of the 8 positions.
    assert_ok(&wgfit(
        d,
        &[
            "predict",
            "--weights",
            "gpt.safetensors",
            "--data",
            "t.safetensors",
            "--output",
            "p.csv",
        ],
    ));
    let csv = std::fs::read_to_string(d.join("p.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 8 * 11 + 8);
    assert_eq!(
        (header[0], header[11], header[88]),
        ("p0_0", "p0_1", "class_0")
    );
    let data = Dataset::from_safetensors(d.join("t.safetensors")).unwrap();
    let Targets::Tokens { labels, .. } = data.targets() else {
        panic!("{:?}", data.targets());
    };
    let predicted: Vec<u32> = csv
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(88)
                .map(|c| c.parse::<u32>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    assert!(
        right * 10 >= labels.len() * 9,
        "{right} of {}",
        labels.len()
    );

    // Greedy: the text's own continuation.
    let greedy = generate(&[]);
    let want: String = PHRASE.repeat(3).chars().take(5 + 30).collect();
    assert_eq!(greedy, want);
    // Drawn: the same seed writes the same text.
    let drawn = generate(&["--temperature", "1.5", "--seed", "4"]);
    assert_eq!(drawn, generate(&["--temperature", "1.5", "--seed", "4"]));
    assert_eq!(drawn.chars().count(), 35);
    assert!(drawn.chars().all(|c| PHRASE.contains(c)), "{drawn}");

    // As many characters as a u64 counts: printed as they come, until the reader goes away
    // (before, they were collected first, and this many failed to allocate).
    let mut child = std::process::Command::new(common::cli::BIN)
        .args(generate_args("18446744073709551615"))
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = vec![0u8; want.len()];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    assert_eq!(String::from_utf8(first).unwrap(), want);
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    // Ended as Unix tools end when their reader goes away: by SIGPIPE, with nothing to say.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(o.status.signal(), Some(13), "{o:?}");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
