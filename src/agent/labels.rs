//! Which container, Kubernetes pod and systemd unit a process runs in, read from the text of
//! its `/proc/PID/cgroup`. Only parsing: the caller reads the file, the metrics crate escapes
//! the values. Never the command line (it can hold secrets).

use std::sync::LazyLock;

use regex::Regex;

/// Where a process runs, as far as its cgroup path tells; empty strings where it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The container's id (64 hex digits: Docker, containerd, CRI-O, Podman).
    pub container: String,
    /// The Kubernetes pod's UID (dashed, as `kubectl get pod -o jsonpath='{.metadata.uid}'`).
    pub pod: String,
    /// The systemd unit (`nginx.service`, `session-3.scope`) outside containers.
    pub unit: String,
    /// The cgroup path itself (the unified hierarchy's, else the first listed).
    pub path: String,
}

static POD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
        .expect("pod pattern")
});
static CONTAINER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[-/])([0-9a-f]{64})(?:\.scope)?$").expect("id pattern"));

/// The cgroup path of a `/proc/PID/cgroup` text: the unified hierarchy's (`0::PATH`), else
/// the first line's.
pub fn cgroup_path(text: &str) -> &str {
    let mut first = None;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            return path;
        }
        first.get_or_insert(path);
    }
    first.unwrap_or("")
}

/// Where the process whose `/proc/PID/cgroup` reads `text` runs.
pub fn placement(text: &str) -> Placement {
    let path = cgroup_path(text);
    let pod = POD
        .captures(path)
        .map(|c| c[1].replace('_', "-"))
        .unwrap_or_default();
    let container = path
        .split('/')
        .rev()
        .find_map(|seg| CONTAINER.captures(seg).map(|c| c[1].to_string()))
        .unwrap_or_default();
    let unit = if container.is_empty() && pod.is_empty() {
        path.split('/')
            .rev()
            .find(|seg| seg.ends_with(".service") || seg.ends_with(".scope"))
            .unwrap_or_default()
            .to_string()
    } else {
        String::new()
    };
    Placement {
        container,
        pod,
        unit,
        path: path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    #[test]
    fn kubernetes_with_the_systemd_driver() {
        let text = format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_0000_4e5f_8a9b_0123456789ab.slice/cri-containerd-{ID}.scope\n");
        let p = placement(&text);
        assert_eq!(p.pod, "1a2b3c4d-0000-4e5f-8a9b-0123456789ab");
        assert_eq!(p.container, ID);
        assert_eq!(p.unit, "");
    }

    #[test]
    fn kubernetes_with_the_cgroupfs_driver_on_cgroup_v1() {
        let text = format!("12:memory:/kubepods/besteffort/pod1a2b3c4d-0000-4e5f-8a9b-0123456789ab/{ID}\n11:cpu,cpuacct:/kubepods/besteffort/pod1a2b3c4d-0000-4e5f-8a9b-0123456789ab/{ID}\n");
        let p = placement(&text);
        assert_eq!(p.pod, "1a2b3c4d-0000-4e5f-8a9b-0123456789ab");
        assert_eq!(p.container, ID);
    }

    #[test]
    fn docker_and_systemd_units() {
        let p = placement(&format!("0::/system.slice/docker-{ID}.scope\n"));
        assert_eq!((p.container.as_str(), p.pod.as_str()), (ID, ""));
        let p = placement(&format!("0::/docker/{ID}\n"));
        assert_eq!(p.container, ID);
        let p = placement("0::/system.slice/billing-worker.service\n");
        assert_eq!(
            (p.container.as_str(), p.unit.as_str()),
            ("", "billing-worker.service")
        );
        let p = placement("0::/user.slice/user-1000.slice/session-3.scope\n");
        assert_eq!(p.unit, "session-3.scope");
        assert_eq!(p.path, "/user.slice/user-1000.slice/session-3.scope");
    }

    #[test]
    fn nothing_known_is_empty() {
        assert_eq!(placement("0::/\n").container, "");
        assert_eq!(placement("").path, "");
        assert_eq!(placement("garbage").unit, "");
    }
}
