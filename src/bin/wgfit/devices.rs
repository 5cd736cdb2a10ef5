//! `wgfit devices`: the adapters wgpu sees, with the one wgfit would use marked.

use crate::{CliResult, Failure};

pub fn run() -> CliResult {
    let (adapters, chosen) = wgfit::gpu::list_adapters();
    if adapters.is_empty() {
        return Err(wgfit::Error::NoAdapter {
            detail: String::new(),
        }
        .into());
    }
    for (i, a) in adapters.iter().enumerate() {
        let marker = if Some(i) == chosen { "*" } else { " " };
        println!("{marker} {i}  {a}");
    }
    match chosen {
        Some(i) => println!(
            "\nwgfit uses the adapter marked * (adapter {i}); set WGPU_ADAPTER_NAME to a part of another's name to pick it"
        ),
        None => {
            return Err(Failure::new(
                "none of these adapters matches WGPU_ADAPTER_NAME; unset it or name one of the above",
            ));
        }
    }
    Ok(())
}
