//! The command line that `mount.fuse3` runs for an fstab line such as
//! `demo /mnt/deploy fuse.pushfs defaults,config=/etc/pushfs/config.toml 0 0`:
//! `pushfs SOURCE MOUNTPOINT -o OPTIONS`. The source is free text (`demo`,
//! `pushfs`); the options carry pushfs's settings next to the generic
//! mount options, which pushfs accepts and ignores.

use std::path::PathBuf;

use thiserror::Error;

/// A mount requested in the `mount.fuse3` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FstabMount {
    pub mountpoint: PathBuf,
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub settle_ms: Option<u64>,
    pub allow_other: bool,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FstabError {
    #[error("usage: pushfs SOURCE MOUNTPOINT [-o OPTIONS] (the form mount.fuse3 runs for fstab)")]
    Usage,
    #[error("unknown mount option `{0}`; pushfs takes config=FILE, state_dir=DIR, settle_ms=N and allow_other")]
    UnknownOption(String),
    #[error("mount option `{name}` needs a value: {name}=…")]
    MissingValue { name: &'static str },
    #[error("mount option settle_ms={0} is not a number of milliseconds")]
    BadNumber(String),
    #[error("pushfs cannot be mounted read-only: it exists to receive files (drop `ro`)")]
    ReadOnly,
}

/// Mount options with a meaning for the kernel or mount(8), not for pushfs.
const GENERIC: &[&str] = &[
    "rw",
    "defaults",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "auto",
    "noauto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "_netdev",
    "nofail",
    "async",
    "sync",
    "atime",
    "noatime",
    "relatime",
    "strictatime",
    "nodiratime",
    "lazytime",
    "default_permissions",
];

/// Whether `args` (without the program name) use this form rather than a
/// subcommand: two positional arguments, then options (mount.fuse3 always
/// passes `-o`, and the source may be any word, `demo` included).
pub fn is_fstab_form(args: &[String], subcommands: &[&str]) -> bool {
    let positional = |i: usize| args.get(i).is_some_and(|a| !a.starts_with('-'));
    positional(0)
        && positional(1)
        && (args.get(2).is_some_and(|a| a.starts_with("-o"))
            || !subcommands.contains(&args[0].as_str()))
}

/// Parses `SOURCE MOUNTPOINT [-o OPTIONS]...`.
pub fn parse(args: &[String]) -> Result<FstabMount, FstabError> {
    let [_source, mountpoint, rest @ ..] = args else {
        return Err(FstabError::Usage);
    };
    let mut mount = FstabMount {
        mountpoint: PathBuf::from(mountpoint),
        config: None,
        state_dir: None,
        settle_ms: None,
        allow_other: false,
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let options = match arg.strip_prefix("-o") {
            Some("") => rest.next().ok_or(FstabError::Usage)?.as_str(),
            Some(attached) => attached,
            None => return Err(FstabError::Usage),
        };
        for option in options.split(',').filter(|o| !o.is_empty()) {
            apply(&mut mount, option)?;
        }
    }
    Ok(mount)
}

fn apply(mount: &mut FstabMount, option: &str) -> Result<(), FstabError> {
    let (name, value) = match option.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (option, None),
    };
    let needed = |name: &'static str| value.ok_or(FstabError::MissingValue { name });
    match name {
        "config" => mount.config = Some(needed("config")?.into()),
        "state_dir" => mount.state_dir = Some(needed("state_dir")?.into()),
        "settle_ms" => {
            let value = needed("settle_ms")?;
            let ms = value
                .parse()
                .map_err(|_| FstabError::BadNumber(value.to_string()))?;
            mount.settle_ms = Some(ms);
        }
        "allow_other" => mount.allow_other = true,
        "ro" => return Err(FstabError::ReadOnly),
        _ if GENERIC.contains(&name) || name.starts_with("x-") || name.starts_with("comment=") => {}
        _ => return Err(FstabError::UnknownOption(option.to_string())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn the_line_mount_fuse3_runs_is_understood() {
        let got = parse(&args(
            "demo /mnt/deploy -o rw,config=/etc/pushfs/c.toml,dev,suid,state_dir=/var/lib/pushfs,settle_ms=500,allow_other,x-systemd.automount",
        ))
        .unwrap();
        assert_eq!(
            got,
            FstabMount {
                mountpoint: "/mnt/deploy".into(),
                config: Some("/etc/pushfs/c.toml".into()),
                state_dir: Some("/var/lib/pushfs".into()),
                settle_ms: Some(500),
                allow_other: true,
            }
        );
        assert_eq!(parse(&args("pushfs /m")).unwrap().config, None);
        assert_eq!(
            parse(&args("x /m -oconfig=/c")).unwrap().config,
            Some("/c".into())
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert_eq!(
            parse(&args("x /m -o confg=/c")),
            Err(FstabError::UnknownOption("confg=/c".into()))
        );
        assert_eq!(parse(&args("x /m -o ro")), Err(FstabError::ReadOnly));
        assert_eq!(
            parse(&args("x /m -o settle_ms=soon")),
            Err(FstabError::BadNumber("soon".into()))
        );
        assert_eq!(
            parse(&args("x /m -o config")),
            Err(FstabError::MissingValue { name: "config" })
        );
        assert_eq!(parse(&args("x /m extra")), Err(FstabError::Usage));
    }

    #[test]
    fn subcommands_are_not_this_form() {
        let subcommands = ["mount", "status"];
        assert!(is_fstab_form(&args("demo /mnt -o rw"), &subcommands));
        assert!(is_fstab_form(&args("mount /mnt -o rw"), &subcommands));
        assert!(is_fstab_form(&args("pushfs /mnt"), &subcommands));
        assert!(!is_fstab_form(&args("mount /mnt"), &subcommands));
        assert!(!is_fstab_form(&args("status"), &subcommands));
        assert!(!is_fstab_form(&args("--help x"), &subcommands));
    }
}
