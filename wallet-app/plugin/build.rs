// The plugin has no commands of its own: the app's commands call wallet-core, which calls
// this plugin's platform. (The Swift and Kotlin projects are registered here with
// `.ios_path("ios")` / `.android_path("android")` once they exist; see docs/wallet-app.md.)
const COMMANDS: &[&str] = &[];

fn main() {
    tauri_plugin::Builder::new(COMMANDS).build();
}
