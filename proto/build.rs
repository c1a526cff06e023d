//! Compiles proto/**/*.proto with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/debcover/v1/coordinator.proto",
        "proto/debcover/v1/campaigns.proto",
        "proto/debcover/v1/rebuild.proto",
        "proto/debcover/v1/attestations.proto",
        "proto/debcover/v1/access.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The raw SHA-256 columns and the string table of built-with pages: received without a copy (a slice of the
        // receive buffer).
        .bytes(".debcover.v1.BuiltWithPage.build_ids")
        .bytes(".debcover.v1.BuiltWithPage.binary_sha256")
        .bytes(".debcover.v1.BuiltWithPage.string_bytes")
        .compile_fds(fds)?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}
