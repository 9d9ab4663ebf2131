// swift-tools-version:5.9
// The iOS side of tauri-plugin-countersign, built by the Xcode project that
// `cargo tauri ios init` generates (see docs/wallet-app.md); not built on Linux CI.
import PackageDescription

let package = Package(
    name: "tauri-plugin-countersign",
    platforms: [.iOS(.v16)],
    products: [
        .library(name: "tauri-plugin-countersign", type: .static, targets: ["CountersignPlugin"]),
    ],
    dependencies: [
        .package(name: "Tauri", path: "../.tauri/tauri-api"),
    ],
    targets: [
        .target(
            name: "CountersignPlugin",
            dependencies: [.byName(name: "Tauri")],
            path: "Sources/CountersignPlugin"
        ),
    ]
)
