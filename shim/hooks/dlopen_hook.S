/* dlopen, interposed. glibc takes dlopen's caller from its return address:
 * the caller's RPATH/RUNPATH finds a bare file name, "$ORIGIN" in the name is
 * the caller's directory, and the caller's link-map namespace is the one the
 * object joins. So every ordinary dlopen is a true tail jump to glibc's, with
 * the program's return address untouched: nothing changes for it.
 *
 * Only a dlopen with RTLD_DEEPBIND (and without RTLD_NOLOAD) that
 * connleak_dlopen_wants() accepts goes to connleak_dlopen_deepbind(file, mode,
 * caller): the objects it loads bind straight to libpq, the MySQL client and
 * libc, bypassing LD_PRELOAD, so their GOT is pointed at the hooks once the
 * load returns (hooks_dl.cpp, got_patch.cpp). */
#include "asm_stub.inc"

    .text
    .globl  dlopen
    .type   dlopen, @function
dlopen:
    .cfi_startproc
    test    $0x8, %esi                  /* RTLD_DEEPBIND */
    je      1f
    test    $0x4, %esi                  /* RTLD_NOLOAD: nothing new is loaded */
    jne     1f
    mov     (%rsp), %rdx                /* the caller's return address */
    CALL_KEEPING_ARGS connleak_dlopen_wants
    test    %al, %al
    je      1f
    mov     (%rsp), %rdx                /* the caller's return address */
    jmp     connleak_dlopen_deepbind
1:  TAIL_JUMP_TO_REAL connleak_real_dlopen, connleak_init_real_dlopen
    .cfi_endproc
    .size   dlopen, .-dlopen
    .section .note.GNU-stack,"",@progbits
