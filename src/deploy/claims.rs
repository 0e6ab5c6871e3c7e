//! One remote app, one folder: which app folder deploys to which remote
//! app. The first folder to deploy somewhere keeps it; a second folder
//! naming the same remote app is refused, and told which folder has it.

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::kind::BackendKind;
use crate::tree::AppId;

#[derive(Default)]
pub struct RemoteClaims {
    /// (backend, remote name) → the app holding it, and its folder name.
    held: Mutex<HashMap<(BackendKind, String), (AppId, String)>>,
}

impl RemoteClaims {
    /// Claims `remote` for `app` (folder `folder`), dropping the app's
    /// earlier claim. Fails with the other folder's name if it is taken.
    pub fn claim(
        &self,
        backend: BackendKind,
        remote: &str,
        app: &AppId,
        folder: &str,
    ) -> Result<(), String> {
        let mut held = self.held.lock();
        let key = (backend, remote.to_string());
        if let Some((owner, other)) = held.get(&key) {
            if owner != app {
                return Err(other.clone());
            }
        }
        held.retain(|(b, _), (owner, _)| !(owner == app && *b == backend));
        held.insert(key, (app.clone(), folder.to_string()));
        Ok(())
    }

    /// The app is gone: its remote app is free again.
    pub fn release(&self, app: &AppId) {
        self.held.lock().retain(|_, (owner, _)| owner != app);
    }

    /// The app folder was renamed: its claims follow.
    pub fn renamed(&self, app: &AppId, folder: &str) {
        for (owner, name) in self.held.lock().values_mut() {
            if owner == app {
                *name = folder.to_string();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_folder_keeps_its_remote_app() {
        let claims = RemoteClaims::default();
        let (a, b) = (AppId("a".into()), AppId("b".into()));
        let cf = BackendKind::Cf;
        assert_eq!(claims.claim(cf, "app shop in space s", &a, "shop"), Ok(()));
        assert_eq!(
            claims.claim(cf, "app shop in space s", &b, "shop-copy"),
            Err("shop".to_string())
        );
        assert_eq!(
            claims.claim(BackendKind::Flux, "app shop in space s", &b, "x"),
            Ok(())
        );
        // a moves to another remote app: the old one is free.
        assert_eq!(claims.claim(cf, "app shop2 in space s", &a, "shop"), Ok(()));
        assert_eq!(
            claims.claim(cf, "app shop in space s", &b, "shop-copy"),
            Ok(())
        );
        claims.renamed(&b, "renamed");
        assert_eq!(
            claims.claim(cf, "app shop in space s", &a, "shop"),
            Err("renamed".to_string())
        );
        claims.release(&b);
        assert_eq!(claims.claim(cf, "app shop in space s", &a, "shop"), Ok(()));
    }
}
