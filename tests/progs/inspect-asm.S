/*
 * inspect-asm.S — functions that no entry hook can take, for the func: scopes that
 * check_envscope finds by inspecting the stack (tests/progs/inspectprog.c). inspect_loop's
 * loop jumps back into its first five bytes; inspect_short is three bytes long with no
 * padding after it. Both keep exact unwind information, as a compiler's would. Built into
 * inspectprog, and with -DINSPECT_DL (dl_ names) into the module inspect-dl.so.
 */
#ifdef INSPECT_DL
#define LOOP dl_inspect_loop
#else
#define LOOP inspect_loop
#endif

        .text

/* void inspect_loop(size_t n, size_t size, void (*fn)(void *)): fn(malloc(size)), n times.
 * The first instruction jumps to the set-up at the end; the loop starts at +2 and every turn
 * jumps back there, into the bytes an entry hook would overwrite. */
        .p2align 4
        .globl  LOOP
        .type   LOOP, @function
LOOP:
        .cfi_startproc
        jmp     .Lsetup
        /* From here to the pops, the three registers below are saved. */
        .cfi_def_cfa_offset 32
        .cfi_offset %rbx, -16
        .cfi_offset %r12, -24
        .cfi_offset %r13, -32
.Lloop:
        test    %rbx, %rbx
        jz      .Ldone
        mov     %r12, %rdi
        call    malloc@PLT
        mov     %rax, %rdi
        call    *%r13
        dec     %rbx
        jmp     .Lloop
.Ldone:
        pop     %r13
        .cfi_def_cfa_offset 24
        .cfi_restore %r13
        pop     %r12
        .cfi_def_cfa_offset 16
        .cfi_restore %r12
        pop     %rbx
        .cfi_def_cfa_offset 8
        .cfi_restore %rbx
        ret
.Lsetup:
        push    %rbx
        .cfi_def_cfa_offset 16
        .cfi_offset %rbx, -16
        push    %r12
        .cfi_def_cfa_offset 24
        .cfi_offset %r12, -24
        push    %r13
        .cfi_def_cfa_offset 32
        .cfi_offset %r13, -32
        mov     %rdi, %rbx
        mov     %rsi, %r12
        mov     %rdx, %r13
        jmp     .Lloop
        .cfi_endproc
        .size   LOOP, .-LOOP

#ifndef INSPECT_DL
/* void inspect_short(void (*callee)(void *, size_t, void (*)(void *)), size_t size,
 * void (*fn)(void *)): callee(callee, size, fn), in three bytes. What follows is code, not
 * padding, so the five-byte jump cannot end there either. It leaves the stack as it found
 * it: the callee starts 16-byte aligned, not 8 past, and makes up for it. */
        .p2align 4
        .globl  inspect_short
        .type   inspect_short, @function
inspect_short:
        .cfi_startproc
        call    *%rdi
        ret
        .cfi_endproc
        .size   inspect_short, .-inspect_short

/* The callee: fn(malloc(size)). Right after inspect_short, with no alignment between. */
        .globl  inspect_short_callee
        .type   inspect_short_callee, @function
inspect_short_callee:
        .cfi_startproc
        push    %rbx
        .cfi_def_cfa_offset 16
        .cfi_offset %rbx, -16
        sub     $8, %rsp
        .cfi_def_cfa_offset 24
        mov     %rdx, %rbx
        mov     %rsi, %rdi
        call    malloc@PLT
        mov     %rax, %rdi
        call    *%rbx
        add     $8, %rsp
        .cfi_def_cfa_offset 16
        pop     %rbx
        .cfi_def_cfa_offset 8
        .cfi_restore %rbx
        ret
        .cfi_endproc
        .size   inspect_short_callee, .-inspect_short_callee
#endif

        .section .note.GNU-stack, "", @progbits
