//! Running python3 peers (pika, pamqp; installed by scripts/test-deps.sh).

use std::process::Command;

/// Runs a python3 script with `args`; its stdout, or a loud failure naming the missing
/// module.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run scripts/test-deps.sh"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for module in ["pika", "pamqp"] {
        if stderr.contains(&format!("No module named '{module}'")) {
            panic!("python3 has no {module} module: run scripts/test-deps.sh (or scripts/test.sh)");
        }
    }
    assert!(
        out.status.success(),
        "python script failed:\n{stderr}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
