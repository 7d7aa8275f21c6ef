//! hostile: a plugin that misbehaves on request, for the engine's sandbox tests. Each mode is something a
//! careless or malicious plugin could do; the engine must fail that step with a clear message and go on.
// Only the wasm32 build exports the plugin; a native build (tests) never calls it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};

struct Hostile;

#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: it must overflow the stack
fn recurse(depth: u64, pad: &mut [u8; 4096]) -> u64 {
    pad[(depth % 4096) as usize] = depth as u8;
    let mut next = [0u8; 4096];
    next[0] = pad[0];
    recurse(depth + 1, std::hint::black_box(&mut next)) + u64::from(pad[1])
}

impl Plugin for Hostile {
    fn describe() -> Description {
        Description::new("hostile", env!("CARGO_PKG_VERSION"))
            .input(Port::new("volume", "volume").optional())
            .output(Port::new("report", "json"))
            .params(serde_json::json!({
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "mode": {"type": "string", "enum": ["ok", "loop", "memory", "panic", "stack", "file", "network", "grant"]},
                    "folder": {"type": "string"}
                }
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let mode = params["mode"].as_str().unwrap_or("ok").to_string();
        match mode.as_str() {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "stack" => {
                let mut pad = [0u8; 4096];
                let n = recurse(0, &mut pad);
                Ok(Outputs::new().json("report", serde_json::json!({ "depth": n })))
            }
            "file" => match std::fs::read_to_string("/etc/passwd") {
                Ok(text) => {
                    Ok(Outputs::new().json("report", serde_json::json!({ "escaped": text })))
                }
                Err(e) => Err(PluginError::new(
                    "denied",
                    format!("reading /etc/passwd: {e}"),
                )),
            },
            "network" => match std::net::TcpStream::connect("127.0.0.1:5432") {
                Ok(_) => Ok(Outputs::new().json("report", serde_json::json!({ "escaped": "tcp" }))),
                Err(e) => Err(PluginError::new(
                    "denied",
                    format!("connecting to 127.0.0.1:5432: {e}"),
                )),
            },
            "grant" => {
                let folder = params["folder"].as_str().unwrap_or_default().to_string();
                let mut names: Vec<String> = std::fs::read_dir(&folder)
                    .map_err(|e| PluginError::new("denied", format!("listing {folder}: {e}")))?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                names.sort();
                let write = std::fs::write(format!("{folder}/written-by-plugin"), b"x");
                let passwd = std::fs::read_to_string("/etc/passwd").is_ok();
                Ok(Outputs::new().json(
                    "report",
                    serde_json::json!({
                        "folder": folder,
                        "entries": names,
                        "write_refused": write.is_err(),
                        "passwd_readable": passwd,
                    }),
                ))
            }
            _ => {
                let voxels = inputs
                    .optional_volume("volume")?
                    .map_or(0, |v| v.geometry.len());
                Ok(Outputs::new().json(
                    "report",
                    serde_json::json!({ "ok": true, "voxels": voxels }),
                ))
            }
        }
    }
}

export_plugin!(Hostile);
