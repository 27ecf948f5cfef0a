/*
 * funchook-stub.S — the two pieces of funchook.c that C cannot express: the common entry
 * stub every hook's trampoline jumps to, and the return stub a hooked call returns into.
 *
 * Both keep every register the ABI lets a callee clobber (a caller built with
 * interprocedural register allocation relies on the ones the hooked function leaves alone),
 * except r11 at entry, which carries the hook, and call C. Both leave through an indirect
 * jump: the entry stub to the relocated instructions, the return stub to the real return
 * address (see there why not a ret).
 * Never touch the x87 stack or the upper halves of the vector registers.
 */
#include "config.h"

#if defined(__x86_64__) && defined(__ELF__) && defined(HAVE_ZYDIS)

        .text

/* Every register the ABI lets a callee clobber, general and xmm0-15, into and out of an
 * aligned 336-byte area at rsp: both stubs keep all of them (see the header). */
#define SAVE_AREA 336
        .macro  save_clobbered
        movq    %rax, 0(%rsp)
        movq    %rcx, 8(%rsp)
        movq    %rdx, 16(%rsp)
        movq    %rsi, 24(%rsp)
        movq    %rdi, 32(%rsp)
        movq    %r8, 40(%rsp)
        movq    %r9, 48(%rsp)
        movq    %r10, 56(%rsp)
        movq    %r11, 64(%rsp)
        movaps  %xmm0, 80(%rsp)
        movaps  %xmm1, 96(%rsp)
        movaps  %xmm2, 112(%rsp)
        movaps  %xmm3, 128(%rsp)
        movaps  %xmm4, 144(%rsp)
        movaps  %xmm5, 160(%rsp)
        movaps  %xmm6, 176(%rsp)
        movaps  %xmm7, 192(%rsp)
        movaps  %xmm8, 208(%rsp)
        movaps  %xmm9, 224(%rsp)
        movaps  %xmm10, 240(%rsp)
        movaps  %xmm11, 256(%rsp)
        movaps  %xmm12, 272(%rsp)
        movaps  %xmm13, 288(%rsp)
        movaps  %xmm14, 304(%rsp)
        movaps  %xmm15, 320(%rsp)
        .endm
        .macro  restore_clobbered
        movq    0(%rsp), %rax
        movq    8(%rsp), %rcx
        movq    16(%rsp), %rdx
        movq    24(%rsp), %rsi
        movq    32(%rsp), %rdi
        movq    40(%rsp), %r8
        movq    48(%rsp), %r9
        movq    56(%rsp), %r10
        movq    64(%rsp), %r11
        movaps  80(%rsp), %xmm0
        movaps  96(%rsp), %xmm1
        movaps  112(%rsp), %xmm2
        movaps  128(%rsp), %xmm3
        movaps  144(%rsp), %xmm4
        movaps  160(%rsp), %xmm5
        movaps  176(%rsp), %xmm6
        movaps  192(%rsp), %xmm7
        movaps  208(%rsp), %xmm8
        movaps  224(%rsp), %xmm9
        movaps  240(%rsp), %xmm10
        movaps  256(%rsp), %xmm11
        movaps  272(%rsp), %xmm12
        movaps  288(%rsp), %xmm13
        movaps  304(%rsp), %xmm14
        movaps  320(%rsp), %xmm15
        .endm

/* At entry: the state of the hooked function's entry, with r11 = its struct cmt_hook
 * (r11 is a scratch register, dead at every function entry). Calls
 * cmt_funchook_enter(hook, &return_address_slot), then resumes the hooked function at its
 * relocated first instructions, hook->code (offset 0). As a function, its frame is the one
 * the hooked function would have had: unwinding from on_enter reaches the real caller. */
        .p2align 4
        .globl  cmt_funchook_enter_stub
        .hidden cmt_funchook_enter_stub
        .type   cmt_funchook_enter_stub, @function
cmt_funchook_enter_stub:
        .cfi_startproc
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        andq    $-16, %rsp              /* callers that do not align the stack exist */
        subq    $SAVE_AREA, %rsp
        save_clobbered
        movq    %r11, %rdi
        leaq    8(%rbp), %rsi
        call    cmt_funchook_enter
        restore_clobbered
        movq    %rbp, %rsp
        popq    %rbp
        .cfi_def_cfa %rsp, 8
        jmp     *(%r11)
        .cfi_endproc
        .size   cmt_funchook_enter_stub, .-cmt_funchook_enter_stub

/* A hooked call returns here, its return address having been replaced: rsp is one word
 * above the slot that held it. The slot is taken back as this stub's own return-address
 * slot and cmt_funchook_return(slot) writes the real return address into it before calling
 * on_exit, so that from then on this is an ordinary frame called from the real caller.
 *
 * Unwinders look a return address up at address-1; the int3 padding before the stub belongs
 * to no function, so a frame whose return address is still the stub ends the unwinding
 * there instead of being read with some other function's rules. */
        .p2align 4
        int3
        int3
        .p2align 4
        .globl  cmt_funchook_return_stub
        .hidden cmt_funchook_return_stub
        .type   cmt_funchook_return_stub, @function
cmt_funchook_return_stub:
        .cfi_startproc
        .cfi_def_cfa_offset 0
        leaq    -8(%rsp), %rsp          /* lea, not sub: nothing else may change yet */
        .cfi_def_cfa_offset 8
        pushq   %rbp
        .cfi_def_cfa_offset 16
        .cfi_offset %rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register %rbp
        andq    $-16, %rsp
        /* Every register the ABI lets a callee clobber is kept, not only the return
         * registers: a caller compiled with interprocedural register allocation (GCC's
         * -fipa-ra, on at -O2) keeps values in caller-saved registers across a call to a
         * function it knows leaves them alone, and the hooked function is such a one. */
        subq    $SAVE_AREA, %rsp
        save_clobbered
        leaq    8(%rbp), %rdi
        call    cmt_funchook_return
        restore_clobbered
        movq    %rbp, %rsp
        popq    %rbp
        .cfi_def_cfa %rsp, 8
        /* The slot now holds the real return address. Not a ret: the hooked function's own
         * ret, into this stub, already took the return predictor's entry for it, and a
         * second ret would take its caller's, mispredicting this return and every one after
         * it up the stack. An indirect jump through the slot, popped first, clobbers no
         * register and leaves the predictor in step. The slot is then in the 128-byte red
         * zone below the stack pointer, which no signal handler may write. */
        leaq    8(%rsp), %rsp
        .cfi_def_cfa_offset 0
        jmp     *-8(%rsp)
        .cfi_endproc
        .size   cmt_funchook_return_stub, .-cmt_funchook_return_stub

#endif

        .section .note.GNU-stack, "", @progbits
