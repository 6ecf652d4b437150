//! A process's Celery app, read from outside: the queues its worker consumes
//! (`app.amqp.queues`' selection), the default queue and each task's own queue, whether
//! `task_routes` is set, the broker and result backend URLs (passwords masked), and the
//! Celery release (`celery.__version__`, with a note outside the releases checked).
//!
//! It answers "where would this app route a task, which queues would its worker take, and
//! which servers does it talk to"; it decides nothing about waits (`celery::link` does) and
//! knows no CPython version. Every string read here is data from the target.

use std::collections::BTreeMap;

use super::celery::{short_str, weak_set};
use crate::cpython::objects::Objects;
use crate::model::CeleryApp;

/// Where Celery keeps its live apps (a `WeakSet`).
const STATE_MODULE: &str = "celery._state";
/// Bounds against a hostile or torn target.
const MAX_QUEUES: usize = 256;
const MAX_TASKS: usize = 4096;
const MAX_URL: usize = 1024;

/// The first live Celery app of an interpreter, if `celery._state` is loaded.
pub fn read(objs: &Objects, interp: usize) -> Option<CeleryApp> {
    let state = objs.sys_module_dict(interp, STATE_MODULE).ok()??;
    let app = weak_set(objs, state, "_apps").into_iter().next()?;
    let mut out = CeleryApp::default();
    // `amqp` and `amqp.queues` are cached properties: present once the app used them.
    if let Some(queues) = objs
        .attr(app, "amqp")
        .ok()
        .flatten()
        .and_then(|amqp| objs.attr(amqp, "queues").ok().flatten())
    {
        let selected = objs
            .attr(queues, "_consume_from")
            .ok()
            .flatten()
            .filter(|d| objs.type_is(*d, "dict"))
            .or_else(|| {
                objs.attr(queues, "_default_consume_from")
                    .ok()
                    .flatten()
                    .filter(|d| objs.type_is(*d, "dict"))
            });
        if let Some(d) = selected {
            out.consumes = dict_keys(objs, d);
        }
    }
    let maps = conf_maps(objs, app);
    let setting = |key: &str| {
        maps.iter()
            .find_map(|m| objs.dict_get(*m, key).ok().flatten())
    };
    out.default_queue = setting("task_default_queue").and_then(|o| short_str(objs, o));
    out.routes = setting("task_routes").is_some_and(|o| {
        !objs.is_none(o)
            && !(objs.type_is(o, "tuple") && objs.tuple_items(o).is_ok_and(|v| v.is_empty()))
    });
    out.broker = setting("broker_url").and_then(|o| url(objs, o));
    out.backend = setting("result_backend").and_then(|o| url(objs, o));
    out.task_queues = task_queues(objs, app);
    out.version = super::versions::read(objs, interp, SUPPORTED.package);
    Some(out)
}

/// The Celery releases this was checked on.
pub const SUPPORTED: super::versions::Checked = super::versions::Checked {
    library: "Celery",
    package: "celery",
    majors: 5..=5,
    spelled: "5.x",
};

/// A note when an app's Celery is not a release of `SUPPORTED` or its version could not be
/// read: it is still read, as one of those.
pub fn version_note(app: &CeleryApp) -> Option<String> {
    super::versions::note(&SUPPORTED, app.version.as_deref())
}

/// The dicts `app.conf` looks a setting up in, first match wins (`ConfigurationView.maps`:
/// the changes, then the defaults).
fn conf_maps(objs: &Objects, app: usize) -> Vec<usize> {
    let Some(conf) = objs.attr(app, "_conf").ok().flatten() else {
        return Vec::new();
    };
    let Some(maps) = objs.attr(conf, "maps").ok().flatten() else {
        return Vec::new();
    };
    objs.list_items(maps)
        .unwrap_or_default()
        .into_iter()
        .take(8)
        .filter(|m| objs.type_is(*m, "dict"))
        .collect()
}

/// The str keys of a dict (a `Queues` is a dict of queue name -> `Queue`).
fn dict_keys(objs: &Objects, dict: usize) -> Vec<String> {
    objs.dict_items(dict)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_QUEUES)
        .map(|(k, _)| k)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .collect()
}

/// The tasks of `app._tasks` whose class names a queue (`@app.task(queue=...)`).
fn task_queues(objs: &Objects, app: usize) -> BTreeMap<String, String> {
    let Some(registry) = objs.attr(app, "_tasks").ok().flatten() else {
        return BTreeMap::new();
    };
    objs.dict_items(registry)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_TASKS)
        .filter_map(|(name, task)| {
            let class = objs.type_of(task).ok()?;
            let dict = objs.class_dict(class)?;
            let queue = objs.dict_get(dict, "queue").ok().flatten()?;
            Some((name, short_str(objs, queue)?))
        })
        .collect()
}

/// A URL setting as a string, its password masked.
fn url(objs: &Objects, obj: usize) -> Option<String> {
    if !objs.type_is(obj, "str") {
        return None;
    }
    let s = objs.str(obj).ok()?;
    (!s.is_empty() && s.len() <= MAX_URL).then(|| mask_password(&s))
}

/// `scheme://user:secret@host/...` -> `scheme://user:***@host/...` (each `;`-separated URL of
/// a failover list alike); a URL without a password is returned as is.
pub fn mask_password(url: &str) -> String {
    url.split(';')
        .map(|one| {
            let Some((scheme, rest)) = one.split_once("://") else {
                return one.to_string();
            };
            let end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(end);
            let Some((userinfo, host)) = authority.rsplit_once('@') else {
                return one.to_string();
            };
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
                None => one.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("redis://:s3cret@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            mask_password("amqp://guest:pw@h//;amqp://u:p@@h2/"),
            "amqp://guest:***@h//;amqp://u:***@h2/"
        );
        assert_eq!(
            mask_password("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(mask_password("filesystem://"), "filesystem://");
    }
}
