//! Line numbers from a code object's line table, for any instruction (py-spy only gives the
//! current line; a lock's holder site is the line of the `with` statement that took it).
//! Formats: CPython's Objects/lnotab_notes.txt (3.8-3.10) and InternalDocs/locations.md (3.11+).

/// The line of the instruction at `unit` (code units), or `None` where it has no line.
pub fn line_at(minor: u8, table: &[u8], first_line: i32, unit: usize) -> Option<u32> {
    let line = match minor {
        8 | 9 => lnotab(table, first_line, unit * 2),
        10 => linetable_310(table, first_line, unit * 2),
        _ => locations(table, first_line, unit),
    }?;
    u32::try_from(line).ok().filter(|l| *l > 0)
}

/// 3.8/3.9 `co_lnotab`: (bytecode increment, signed line increment) pairs.
fn lnotab(table: &[u8], first_line: i32, byte: usize) -> Option<i32> {
    let mut line = first_line;
    let mut addr = 0usize;
    for pair in table.chunks_exact(2) {
        addr += pair[0] as usize;
        if addr > byte {
            break;
        }
        line += pair[1] as i8 as i32;
    }
    Some(line)
}

/// 3.10 `co_linetable`: (bytes covered, signed line delta; -128 means no line) pairs.
fn linetable_310(table: &[u8], first_line: i32, byte: usize) -> Option<i32> {
    let mut line = first_line;
    let mut start = 0usize;
    for pair in table.chunks_exact(2) {
        let end = start + pair[0] as usize;
        let delta = pair[1] as i8;
        let this = if delta == -128 {
            None
        } else {
            line += delta as i32;
            Some(line)
        };
        if start <= byte && byte < end {
            return this;
        }
        start = end;
    }
    None
}

/// 3.11+ location table: entries of (code, length) with a code-specific payload.
fn locations(table: &[u8], first_line: i32, unit: usize) -> Option<i32> {
    let mut pos = 0usize;
    let mut line = first_line;
    let mut start = 0usize;
    let varint = |pos: &mut usize| -> Option<u32> {
        let mut b = *table.get(*pos)?;
        *pos += 1;
        let mut val = (b & 63) as u32;
        let mut shift = 0;
        while b & 64 != 0 {
            b = *table.get(*pos)?;
            *pos += 1;
            shift += 6;
            val |= ((b & 63) as u32) << shift;
        }
        Some(val)
    };
    let svarint = |pos: &mut usize| -> Option<i32> {
        let v = varint(pos)?;
        Some(if v & 1 == 1 {
            -((v >> 1) as i32)
        } else {
            (v >> 1) as i32
        })
    };
    while pos < table.len() {
        let head = table[pos];
        pos += 1;
        let code = (head >> 3) & 15;
        let length = (head & 7) as usize + 1;
        let this = match code {
            15 => None,
            14 => {
                line += svarint(&mut pos)?;
                varint(&mut pos)?;
                varint(&mut pos)?;
                varint(&mut pos)?;
                Some(line)
            }
            13 => {
                line += svarint(&mut pos)?;
                Some(line)
            }
            10..=12 => {
                line += code as i32 - 10;
                pos += 2;
                Some(line)
            }
            _ => {
                pos += 1;
                Some(line)
            }
        };
        let end = start + length;
        if start <= unit && unit < end {
            return this;
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_311_location_table() {
        // `def f(a):\n    x = 1\n    return a` defined at line 2, compiled by CPython 3.11.7:
        // RESUME (line 2), LOAD_CONST/STORE_FAST (line 3), LOAD_FAST/RETURN_VALUE (line 4).
        let table = [128, 0, 216, 8, 9, 128, 65, 216, 11, 12, 128, 72];
        let lines: Vec<_> = (0..5).map(|u| line_at(11, &table, 2, u)).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(3), Some(4), Some(4)]);
        assert_eq!(line_at(11, &table, 2, 9), None);
    }

    #[test]
    fn reads_a_38_lnotab() {
        // Line +1 at byte 4, +2 at byte 10.
        let table = [4, 1, 6, 2];
        assert_eq!(line_at(8, &table, 10, 0), Some(10));
        assert_eq!(line_at(8, &table, 10, 2), Some(11));
        assert_eq!(line_at(8, &table, 10, 5), Some(13));
    }
}
