//! Which release of a framework library a process runs (its `__version__`, read from the
//! package's module dict, bounded) and the note a report gets when that release is outside
//! the ones gridlock was checked on, or cannot be read: the framework is still read, as one
//! of those. Reads one string; decides nothing else.

use crate::cpython::objects::Objects;

/// Characters kept of a version string read from the target.
const MAX_VERSION: usize = 32;

/// A framework library and the major releases it was checked on.
pub struct Checked {
    /// The library's name in a note (`Twisted`).
    pub library: &'static str,
    /// Its package (`twisted`), whose `__version__` is read.
    pub package: &'static str,
    /// The major releases checked, as a range and as the note spells it (`24.x-26.x`).
    pub majors: std::ops::RangeInclusive<u32>,
    pub spelled: &'static str,
}

/// The package's `__version__` (a `str`, its first `MAX_VERSION` characters), if readable.
pub fn read(objs: &Objects, interp: usize, package: &str) -> Option<String> {
    let dict = objs.sys_module_dict(interp, package).ok().flatten()?;
    let v = objs.dict_get(dict, "__version__").ok().flatten()?;
    if !objs.type_is(v, "str") {
        return None;
    }
    let v = objs.str(v).ok()?;
    Some(v.chars().take(MAX_VERSION).collect())
}

/// The note for a release read (`None`: could not be read) when it is not one checked.
pub fn note(checked: &Checked, version: Option<&str>) -> Option<String> {
    let Checked {
        library, spelled, ..
    } = checked;
    let Some(version) = version else {
        return Some(format!(
            "{library}'s version could not be read; it is read as {library} {spelled}"
        ));
    };
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    (!major.is_some_and(|m| checked.majors.contains(&m))).then(|| {
        format!(
            "{library} {version} is outside the releases gridlock was checked on ({spelled}); it is read as those"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWISTED: Checked = Checked {
        library: "Twisted",
        package: "twisted",
        majors: 24..=26,
        spelled: "24.x-26.x",
    };

    #[test]
    fn a_checked_release_has_no_note_and_others_say_how_they_are_read() {
        assert_eq!(note(&TWISTED, Some("26.10.0")), None);
        assert_eq!(note(&TWISTED, Some("24.3.0rc1")), None);
        assert_eq!(
            note(&TWISTED, Some("22.4.0")).as_deref(),
            Some("Twisted 22.4.0 is outside the releases gridlock was checked on (24.x-26.x); it is read as those")
        );
        assert!(note(&TWISTED, Some("trunk"))
            .is_some_and(|n| n.starts_with("Twisted trunk is outside")));
        assert_eq!(
            note(&TWISTED, None).as_deref(),
            Some("Twisted's version could not be read; it is read as Twisted 24.x-26.x")
        );
    }
}
