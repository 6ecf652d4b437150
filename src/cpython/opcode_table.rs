//! What one CPython version's opcode table holds (names, specialised -> base opcode, inline
//! caches): the type the generated `opcodes` tables are written in. Data only: decoding is
//! `bytecode`'s question, which version has which table `layout`'s.

/// One version's opcode facts, generated from the interpreter's own `opcode` module.
#[derive(Debug)]
pub struct OpcodeTable {
    pub minor: u8,
    pub have_argument: u8,
    pub names: [Option<&'static str>; 256],
    /// Specialised (quickened) opcode -> its base opcode; identity for base opcodes.
    pub deopt: [u8; 256],
    /// Inline cache code units following each opcode (3.11+).
    pub caches: [u8; 256],
}

impl OpcodeTable {
    pub fn name(&self, op: u8) -> &'static str {
        self.names[self.deopt[op as usize] as usize].unwrap_or("?")
    }
}
