//! Reading an uploaded app the way the emulator believes ByteNite does:
//! base64 `data` → tar (gzip tolerated) → `manifest.json` → checked fields.

use std::collections::BTreeSet;
use std::io::Read;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::backend::bytenite::manifest::{AppManifest, Manifest, MANIFEST_FILE};

/// protojson reads `bytes` fields as standard or URL-safe base64, padded or not.
fn engines() -> [GeneralPurpose; 2] {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [
        GeneralPurpose::new(&alphabet::STANDARD, config),
        GeneralPurpose::new(&alphabet::URL_SAFE, config),
    ]
}

pub fn decode_data(data: &str) -> Result<Vec<u8>, String> {
    let mut first_error = None;
    for engine in engines() {
        match engine.decode(data) {
            Ok(bytes) => return Ok(bytes),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    Err(format!(
        "data is not valid base64: {}",
        first_error.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// What the emulator learned from an archive.
#[derive(Debug)]
pub struct UploadedApp {
    pub manifest: AppManifest,
    /// The archive's bytes after gunzip: what was hashed.
    pub tar: Vec<u8>,
}

pub fn read_app(bytes: Vec<u8>) -> Result<UploadedApp, String> {
    let tar = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| format!("data looks gzip-compressed but cannot be decompressed: {e}"))?;
        out
    } else {
        bytes
    };
    let files = list(&tar)?;
    let root = manifest_root(&files)?;
    let manifest_bytes = files
        .iter()
        .find(|f| f.path == format!("{root}{MANIFEST_FILE}"))
        .and_then(|f| f.content.clone())
        .expect("manifest_root found it");
    let manifest = Manifest::parse(&manifest_bytes, MANIFEST_FILE)
        .and_then(|m| m.validate())
        .map_err(|e| format!("manifest.json: {e}"))?;
    let entry = format!("{root}app/{}", manifest.entrypoint);
    if !files.iter().any(|f| f.path == entry && !f.is_dir) {
        return Err(format!(
            "manifest.json: entrypoint {:?} not found: the archive has no {entry}",
            manifest.entrypoint
        ));
    }
    Ok(UploadedApp { manifest, tar })
}

struct TarFile {
    path: String,
    is_dir: bool,
    /// Kept only for manifests, so a big upload is not copied again.
    content: Option<Vec<u8>>,
}

fn list(tar: &[u8]) -> Result<Vec<TarFile>, String> {
    let corrupt = |e: std::io::Error| format!("data is not a valid tar archive: {e}");
    let mut archive = tar::Archive::new(tar);
    let mut files = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let raw = entry
            .path()
            .map_err(corrupt)?
            .to_string_lossy()
            .into_owned();
        let path = raw
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let is_dir = entry.header().entry_type().is_dir();
        let content = if path.ends_with(MANIFEST_FILE) && !is_dir {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(corrupt)?;
            Some(bytes)
        } else {
            // Reading through checks the archive is complete.
            std::io::copy(&mut entry, &mut std::io::sink()).map_err(corrupt)?;
            None
        };
        if !path.is_empty() {
            files.push(TarFile {
                path,
                is_dir,
                content,
            });
        }
    }
    Ok(files)
}

/// `""` if `manifest.json` is at the root, `"dir/"` if the archive holds one
/// top-level directory that has it.
fn manifest_root(files: &[TarFile]) -> Result<String, String> {
    if files.iter().any(|f| f.path == MANIFEST_FILE && !f.is_dir) {
        return Ok(String::new());
    }
    let tops: BTreeSet<&str> = files
        .iter()
        .map(|f| f.path.split('/').next().unwrap_or(""))
        .collect();
    if let [only] = tops.into_iter().collect::<Vec<_>>()[..] {
        let nested = format!("{only}/{MANIFEST_FILE}");
        if files.iter().any(|f| f.path == nested && !f.is_dir) {
            return Ok(format!("{only}/"));
        }
    }
    Err("manifest.json not found at the archive's root".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, path, content.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    const MANIFEST: &str = r#"{"name":"a","version":"0.1","platform":"docker","entrypoint":"main.py","platform_config":{"container":"python"}}"#;

    #[test]
    fn base64_in_any_protojson_form() {
        assert_eq!(decode_data("aGk=").unwrap(), b"hi");
        assert_eq!(decode_data("aGk").unwrap(), b"hi");
        assert_eq!(decode_data("-_8").unwrap(), [0xfb, 0xff]);
        assert!(decode_data("%%%notbase64")
            .unwrap_err()
            .starts_with("data is not valid base64"));
    }

    #[test]
    fn manifest_at_root_or_in_one_folder() {
        let app = read_app(tar_of(&[("manifest.json", MANIFEST), ("app/main.py", "")])).unwrap();
        assert_eq!(app.manifest.name, "a");
        let app = read_app(tar_of(&[
            ("x/manifest.json", MANIFEST),
            ("x/app/main.py", ""),
        ]))
        .unwrap();
        assert_eq!(app.manifest.version, "0.1");
        let err = read_app(tar_of(&[("app/main.py", "")])).unwrap_err();
        assert!(err.contains("manifest.json not found"), "{err}");
    }

    #[test]
    fn broken_uploads_say_why() {
        let err = read_app(b"this is not a tar archive at all".repeat(20)).unwrap_err();
        assert!(err.starts_with("data is not a valid tar archive"), "{err}");
        let err = read_app(tar_of(&[("manifest.json", MANIFEST)])).unwrap_err();
        assert!(err.contains("no app/main.py"), "{err}");
        let err = read_app(tar_of(&[("manifest.json", "{"), ("app/main.py", "")])).unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn gzip_is_tolerated() {
        use std::io::Write;
        let tar = tar_of(&[("manifest.json", MANIFEST), ("app/main.py", "")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).unwrap();
        let app = read_app(gz.finish().unwrap()).unwrap();
        assert_eq!(app.tar, tar);
    }
}
