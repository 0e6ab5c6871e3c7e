//! The README's deploy share for other machines: Samba serving a backend
//! directory of a mount. An app put through `smbclient` deploys, and its
//! `.pushfs/` files read back over SMB. Needs `smbd` and `smbclient`
//! (scripts/test.sh installs them).

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestMount;

/// `smbd` in the foreground; killed when dropped.
struct Smbd(Child);

impl Drop for Smbd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The smb.conf of the README's recipe, with every directory in `dir`.
fn smb_conf(dir: &Path, share: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "[global]\n\
         smb ports = {port}\n\
         interfaces = lo\n\
         bind interfaces only = yes\n\
         server role = standalone server\n\
         map to guest = Bad User\n\
         guest account = root\n\
         load printers = no\n\
         disable spoolss = yes\n\
         lock directory = {d}/lock\n\
         state directory = {d}/state\n\
         cache directory = {d}/cache\n\
         private dir = {d}/private\n\
         pid directory = {d}/pid\n\
         log file = {d}/smbd.log\n\
         kernel oplocks = no\n\
         kernel share modes = no\n\
         posix locking = no\n\
         oplocks = no\n\
         level2 oplocks = no\n\
         [deploy]\n\
         path = {}\n\
         read only = no\n\
         guest ok = yes\n\
         force user = root\n",
        share.display()
    )
}

fn smbclient(port: u16, commands: &str) -> String {
    let out = Command::new("smbclient")
        .args([
            "//127.0.0.1/deploy",
            "-N",
            "-p",
            &port.to_string(),
            "-c",
            commands,
        ])
        .output()
        .expect("this test needs smbclient (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "smbclient -c {commands:?}:\n{text}");
    text
}

#[test]
fn an_app_put_over_smb_deploys_and_its_state_reads_back_over_smb() {
    let t = TestMount::with_emulators_and(|config, _| config.cf.poll_interval_ms = Some(20));
    let dir = t.scratch("samba");
    for sub in ["lock", "state", "cache", "private", "pid"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let port = free_port();
    let conf = dir.join("smb.conf");
    fs::write(&conf, smb_conf(&dir, &t.mnt().join("cf"), port)).unwrap();
    let smbd = Smbd(
        Command::new("smbd")
            .args(["--foreground", "--no-process-group", "-s"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("this test needs smbd (scripts/test.sh installs samba)"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "smbd did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cf-hello");
    smbclient(
        port,
        &format!(
            "mkdir shared; cd shared; lcd {}; put index.html; put Staticfile; put manifest.yml",
            example.display()
        ),
    );
    let waited = smbclient(port, "cd shared; get .pushfs/wait /dev/stdout");
    assert!(waited.starts_with("deployed\n"), "{waited}");
    let url = smbclient(port, "cd shared; get .pushfs/url /dev/stdout");
    assert!(url.starts_with("http://cf-hello.apps.localhost:"), "{url}");

    let cf = &t.emulators().cf.api;
    let app = cf.app_by_name("cf-hello").expect("deployed to the server");
    assert_eq!(app.state, "STARTED");
    let mut files: Vec<String> = app.package.unwrap().keys().cloned().collect();
    files.sort();
    assert_eq!(files, ["Staticfile", "index.html"]);
    drop(smbd);
}
