//! Who owns a stage's mounted directories: each component's `run_as`, decided here as a pure
//! function of the profile, and applied after every operation that makes or fills them.

use super::Stages;
use crate::core::settings::{Component, Profile};
use crate::core::Result;

/// The owner and mode of one stage directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirOwner {
    pub dir: String,
    pub uid: u32,
    pub gid: u32,
    /// 0700, or 0770 when another component mounts it too (it joins the owner's group).
    pub mode: u32,
}

/// The profile's components in the order that decides a shared directory's owner.
fn ordered(profile: &Profile) -> Vec<&Component> {
    let mut v = vec![&profile.app];
    v.extend(profile.code_server.as_ref());
    v.push(&profile.db);
    v
}

/// The owner of each directory mounted by a component with `run_as`; the app wins a shared
/// one. Directories of components without `run_as` (the db) are left to their image.
pub fn dir_owners(profile: &Profile) -> Vec<DirOwner> {
    let comps = ordered(profile);
    let mut owners: Vec<DirOwner> = vec![];
    for c in &comps {
        let Some(r) = c.run_as else { continue };
        for dir in c.mounts.keys() {
            if owners.iter().any(|o| &o.dir == dir) {
                continue;
            }
            let shared = comps.iter().filter(|o| o.mounts.contains_key(dir)).count() > 1;
            owners.push(DirOwner {
                dir: dir.clone(),
                uid: r.uid,
                gid: r.gid,
                mode: if shared { 0o770 } else { 0o700 },
            });
        }
    }
    owners
}

/// The owners' gids a component must join to write the shared directories it mounts but
/// does not own (the code server in the app's addons).
pub fn extra_groups(profile: &Profile, component: &Component) -> Vec<String> {
    let Some(me) = component.run_as else {
        return vec![];
    };
    let mut gids: Vec<String> = dir_owners(profile)
        .into_iter()
        .filter(|o| component.mounts.contains_key(&o.dir) && o.uid != me.uid && o.gid != me.gid)
        .map(|o| o.gid.to_string())
        .collect();
    gids.dedup();
    gids
}

impl Stages {
    /// Gives the stage's directories (all, or `only`) their owners, recursively.
    pub(super) async fn own_dirs(
        &self,
        profile: &Profile,
        subscription: &str,
        name: &str,
        only: Option<&str>,
    ) -> Result<()> {
        let owners: Vec<DirOwner> = dir_owners(profile)
            .into_iter()
            .filter(|o| only.is_none_or(|d| d == o.dir))
            .collect();
        if owners.is_empty() {
            return Ok(());
        }
        for o in owners {
            self.deps
                .dirs
                .own(subscription, name, &o.dir, o.uid, o.gid, o.mode)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::settings::RunAs;

    #[test]
    fn the_app_owns_what_it_shares_and_the_code_server_joins_its_group() {
        let p = crate::core::settings::odoo_profile();
        let owners = dir_owners(&p);
        let get = |d: &str| owners.iter().find(|o| o.dir == d).cloned();
        assert_eq!(
            get("filestore"),
            Some(DirOwner {
                dir: "filestore".into(),
                uid: 101,
                gid: 101,
                mode: 0o700
            })
        );
        assert_eq!(get("addons").map(|o| (o.uid, o.mode)), Some((101, 0o770)));
        assert_eq!(get("db"), None, "the db image chowns its own");
        let cs = p.code_server.as_ref().unwrap();
        assert_eq!(extra_groups(&p, cs), vec!["101".to_string()]);
        assert!(extra_groups(&p, &p.app).is_empty());
    }

    #[test]
    fn without_run_as_nothing_is_owned() {
        let mut p = crate::core::settings::odoo_profile();
        p.app.run_as = None;
        p.code_server.as_mut().unwrap().run_as = None;
        assert!(dir_owners(&p).is_empty());
        p.code_server.as_mut().unwrap().run_as = Some(RunAs { uid: 7, gid: 7 });
        let owners = dir_owners(&p);
        assert_eq!(owners.len(), 1);
        assert_eq!((owners[0].dir.as_str(), owners[0].mode), ("addons", 0o770));
    }
}
