// The plugin has no commands of its own: the app's commands call wallet-core, which calls
// this plugin's platform. The Kotlin and Swift projects are registered so that Android and
// iOS builds of the app compile them in (on desktop targets this is a no-op).
const COMMANDS: &[&str] = &[];

fn main() {
    tauri_plugin::Builder::new(COMMANDS)
        .android_path("android")
        .ios_path("ios")
        .build();
}
