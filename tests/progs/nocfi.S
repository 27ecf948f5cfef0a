/*
 * nocfi.S — void *nocfi_alloc(size_t size): malloc(size) from code without unwind
 * information, so that the stack of that allocation can only be walked by libunwind
 * (the tracker's cached rules come from .eh_frame, which has no entry for it). For
 * tests/progs/fdprog.c. Keeps a frame pointer, as libunwind's fallback expects.
 */
        .text
        .p2align 4
        .globl  nocfi_alloc
        .type   nocfi_alloc, @function
nocfi_alloc:
        push    %rbp
        mov     %rsp, %rbp
        call    malloc@PLT
        pop     %rbp
        ret
        .size   nocfi_alloc, .-nocfi_alloc

        .section .note.GNU-stack, "", @progbits
