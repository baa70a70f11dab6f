//! What a knob change costs the engine thread: one 8-bar pattern from each shipped model, the
//! way the plugin asks for it (issue target: at most 30 ms on one core, so a change is heard
//! at the next bar line at any tempo up to 300 BPM). Run it pinned to one core to see the
//! one-core figure: `taskset -c 0 cargo bench --bench render`.

use criterion::{criterion_group, criterion_main, Criterion};
use dreamroll::model::generator::{Generator, RenderRequest};
use std::path::Path;

fn render_eight_bars(c: &mut Criterion) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut names: Vec<String> = std::fs::read_dir(&models).expect("models/").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let Ok(generator) = Generator::from_dir(&models.join(&name)) else { continue };
        let tracks = generator.card().representation.track_count();
        let mut seed = 0u64;
        c.bench_function(&format!("render/8 bars, {name} ({} preset, {tracks} tracks)", generator.card().preset), |b| {
            b.iter(|| {
                seed += 1;
                let request = RenderRequest { bars: 8, seed, knobs: vec![0.5, -1.0], variation: 0.3, temperature: None, density: 0.0, named: Vec::new() };
                generator.render(&request).expect("renders")
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = render_eight_bars
}
criterion_main!(benches);
