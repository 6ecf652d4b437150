//! The offset tables of CPython 3.8-3.13, taken from the debug info of pyenv's builds and
//! checked live (3.13 is also the base a 3.13+ target's `_Py_DebugOffsets` completes).

use super::offsets::*;

pub(super) const fn before_311(minor: u8) -> Offsets {
    let is_310 = minor == 10;
    Offsets {
        interp_threads_head: 8,
        interp_modules: if minor == 8 { 56 } else { 856 },
        interp_ceval_gil: None,
        interp_own_gil: None,
        interp_next_and_id: None,
        tstate_next: 8,
        tstate_thread_id: 176,
        tstate_native_thread_id: None,
        tstate_base_frame: None,
        tstate_top_frame: TopFrame::Direct(24),
        frame_back: 24,
        frame_code: 32,
        frame_globals: 48,
        frame_instruction: if is_310 {
            InstructionPointer::LastiUnits(96)
        } else {
            InstructionPointer::LastiBytes(104)
        },
        frame_valuestack_ptr: Some(64),
        // f_blockstack holds CO_MAXBLOCKS (20) PyTryBlocks of 12 bytes, then f_localsplus.
        frame_localsplus: if is_310 { 112 + 240 } else { 120 + 240 },
        frame_blocks: if is_310 {
            BlockScheme::BlockStack {
                iblock: 104,
                blockstack: 112,
            }
        } else {
            BlockScheme::BlockStack {
                iblock: 112,
                blockstack: 120,
            }
        },
        frame_owner: None,
        code_bytecode: Bytecode::Object(48),
        code_consts: 56,
        code_names: 64,
        code_varnames: 72,
        code_cellvars: Some(88),
        code_freevars: Some(80),
        code_nlocals: 28,
        code_argcount: 16,
        code_nlocalsplus: None,
        code_stacksize: 32,
        code_exceptiontable: None,
        code_filename: 104,
        code_name: 112,
        code_qualname: None,
        code_firstlineno: 40,
        code_linetable: 120,
        str_ascii_data: 48,
        str_compact_data: 72,
        int_lv_tag: false,
        instance_dict: InstanceDict::DictOffset,
        runtime_interpreters_head: 32,
        tstate_interp: 16,
        frame_shim_owner: None,
        stackrefs: false,
        tuple_items: 24,
        dict_keys: DictKeys::Sized,
        dict_values_header: 0,
        ht_cached_keys: 0,
        gil: GilRecord::TstatePointer,
        parking_lot: false,
        sub_thread_ids_trusted: false,
    }
}

pub(super) const V311: Offsets = Offsets {
    interp_threads_head: 16,
    interp_modules: 888,
    interp_ceval_gil: None,
    interp_own_gil: None,
    interp_next_and_id: None,
    tstate_next: 8,
    tstate_thread_id: 152,
    tstate_native_thread_id: Some(160),
    tstate_base_frame: None,
    tstate_top_frame: TopFrame::ViaCframe(56, 8),
    frame_back: 48,
    frame_code: 32,
    frame_globals: 8,
    frame_instruction: InstructionPointer::Pointer(56),
    frame_valuestack_ptr: None,
    frame_localsplus: 72,
    frame_blocks: BlockScheme::ExceptionTable,
    frame_owner: Some(69),
    code_bytecode: Bytecode::Inline(184),
    code_consts: 24,
    code_names: 32,
    code_varnames: 96,
    code_cellvars: None,
    code_freevars: None,
    code_nlocals: 80,
    code_argcount: 56,
    code_nlocalsplus: Some(76),
    code_stacksize: 68,
    code_exceptiontable: Some(40),
    code_filename: 112,
    code_name: 120,
    code_qualname: Some(128),
    code_firstlineno: 72,
    code_linetable: 136,
    str_ascii_data: 48,
    str_compact_data: 72,
    int_lv_tag: false,
    instance_dict: InstanceDict::Managed311,
    runtime_interpreters_head: 40,
    tstate_interp: 16,
    frame_shim_owner: None,
    stackrefs: false,
    tuple_items: 24,
    dict_keys: DictKeys::Log2,
    dict_values_header: 0,
    ht_cached_keys: 872,
    gil: GilRecord::TstatePointer,
    parking_lot: false,
    sub_thread_ids_trusted: false,
};

pub(super) const fn from_312(minor: u8) -> Offsets {
    let is_313 = minor == 13;
    Offsets {
        interp_threads_head: if is_313 { 7344 } else { 72 },
        interp_modules: if is_313 { 7656 } else { 944 },
        // 3.12 (gdb on pyenv's 3.12.1): `ceval.gil` +384, `_gil` +1040, `next` +0, `id` +8;
        // checked on the live runtime before use (`cpython::gil_fields`). 3.13 takes them
        // from its debug offsets.
        interp_ceval_gil: if is_313 { None } else { Some(384) },
        interp_own_gil: if is_313 { None } else { Some(1040) },
        interp_next_and_id: if is_313 { None } else { Some((0, 8)) },
        tstate_next: 8,
        tstate_thread_id: if is_313 { 152 } else { 136 },
        tstate_native_thread_id: Some(if is_313 { 160 } else { 144 }),
        tstate_base_frame: None,
        tstate_top_frame: if is_313 {
            TopFrame::Direct(72)
        } else {
            TopFrame::ViaCframe(56, 0)
        },
        frame_back: 8,
        frame_code: 0,
        frame_globals: 24,
        frame_instruction: InstructionPointer::Pointer(56),
        frame_valuestack_ptr: None,
        frame_localsplus: 72,
        frame_blocks: BlockScheme::ExceptionTable,
        frame_owner: Some(70),
        code_bytecode: Bytecode::Inline(if is_313 { 200 } else { 192 }),
        code_consts: 24,
        code_names: 32,
        code_varnames: 96,
        code_cellvars: None,
        code_freevars: None,
        code_nlocals: 80,
        code_argcount: 52,
        code_nlocalsplus: Some(72),
        code_stacksize: 64,
        code_exceptiontable: Some(40),
        code_filename: 112,
        code_name: 120,
        code_qualname: Some(128),
        code_firstlineno: 68,
        code_linetable: 136,
        str_ascii_data: 40,
        str_compact_data: 56,
        int_lv_tag: true,
        instance_dict: if is_313 {
            InstanceDict::Managed313
        } else {
            InstanceDict::Managed312
        },
        runtime_interpreters_head: if is_313 { 632 } else { 40 },
        tstate_interp: 16,
        frame_shim_owner: Some(3),
        stackrefs: false,
        tuple_items: 24,
        dict_keys: DictKeys::Log2,
        dict_values_header: if is_313 { 8 } else { 0 },
        ht_cached_keys: 880,
        gil: GilRecord::LastHolder,
        parking_lot: is_313,
        sub_thread_ids_trusted: is_313,
    }
}
