//! Embeds the default model named in `bundled/default-model.txt`, so the plugin and the CLI
//! work with no files beside them.

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let choice = root.join("bundled/default-model.txt");
    println!("cargo:rerun-if-changed={}", choice.display());
    let name = std::fs::read_to_string(&choice).unwrap_or_else(|e| panic!("{}: {e}", choice.display()));
    let folder = root.join("models").join(name.trim());
    let mut paths = Vec::new();
    for file in ["model.json", "decoder.safetensors"] {
        let path = folder.join(file);
        assert!(
            path.is_file(),
            "the default model `{}` lacks {} (bundled/default-model.txt names a folder of models/)",
            name.trim(),
            path.display()
        );
        println!("cargo:rerun-if-changed={}", path.display());
        paths.push(path);
    }
    // Optional files: the encoder (to read a clip) and the learned phrases (never to hand out).
    let optional = |file: &str| {
        let path = folder.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_file() {
            format!("Some(include_bytes!({path:?}))")
        } else {
            "None".to_string()
        }
    };
    let code = format!(
        "/// The embedded default model's card.\npub const DEFAULT_CARD: &str = include_str!({:?});\n\
         /// The embedded default model's decoder weights.\npub static DEFAULT_WEIGHTS: &[u8] = include_bytes!({:?});\n\
         /// The embedded default model's encoder weights, where its folder has them.\npub static DEFAULT_ENCODER: Option<&[u8]> = {};\n\
         /// The embedded default model's learned phrases, where its folder has them.\npub static DEFAULT_LEARNED_PHRASES: Option<&[u8]> = {};\n",
        paths[0],
        paths[1],
        optional("encoder.safetensors"),
        optional("learned-phrases.bin")
    );
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("default_model.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
