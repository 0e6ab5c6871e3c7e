//! The staging output a build writes to log-cache (`source_type` STG), as
//! Diego and the buildpacks print it; a failed build ends with the
//! buildpack's failure on stderr.

use super::super::EmulatorState;
use super::Lifecycle;

/// Writes the build's staging lines for `app_guid`.
pub(super) fn emit(state: &mut EmulatorState, app_guid: &str, lifecycle: &Lifecycle, fails: bool) {
    let mut lines: Vec<(&str, String)> = vec![
        (
            "OUT",
            "Cell 0e3c0000-emulator creating container for instance staging".into(),
        ),
        (
            "OUT",
            "Cell 0e3c0000-emulator successfully created container for instance staging".into(),
        ),
    ];
    match lifecycle {
        Lifecycle::Docker { image } => {
            lines.push(("OUT", "Staging...".into()));
            lines.push(("OUT", "Staging process started ...".into()));
            lines.push(("OUT", format!("Docker image will be used: {image}")));
            lines.push(("OUT", "Staging process finished".into()));
            lines.push(("OUT", "Exit status 0".into()));
            lines.push(("OUT", "Staging Complete".into()));
        }
        Lifecycle::Buildpack { buildpacks, stack } => {
            lines.push(("OUT", "Downloading app package...".into()));
            lines.push(("OUT", "Downloaded app package".into()));
            if fails {
                lines.push(("OUT", format!("-----> Detecting buildpacks on {stack}")));
                lines.push((
                    "ERR",
                    "None of the buildpacks detected a compatible application".into(),
                ));
            } else {
                let buildpack = buildpacks
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "staticfile_buildpack".into());
                lines.push(("OUT", format!("-----> {buildpack} detected")));
                lines.push(("OUT", "-----> Installing dependencies".into()));
                lines.push(("OUT", "Exit status 0".into()));
                lines.push(("OUT", "Uploading droplet, build artifacts cache...".into()));
                lines.push(("OUT", "Uploaded droplet".into()));
                lines.push(("OUT", "Uploading complete".into()));
                lines.push((
                    "OUT",
                    "Cell 0e3c0000-emulator stopping instance staging".into(),
                ));
            }
        }
    }
    for (stream, text) in lines {
        state.emit_log(app_guid, "STG", stream, &text);
    }
}
