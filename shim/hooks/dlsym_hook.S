/* dlsym, interposed. glibc decides the scope of dlsym(RTLD_NEXT, ...) and
 * dlsym(RTLD_DEFAULT, ...) from its caller's return address, so for those two
 * handles the hook must be a true tail jump: a C wrapper's own call would make
 * the shim the caller (RTLD_NEXT then searches after the shim, not after the
 * program's module, and objects loaded RTLD_LOCAL get NULL). Any other handle
 * goes to connleak_dlsym_handle(handle, name, caller), which may hand back a
 * tracking wrapper (hooks_dlsym.cpp). */
#include "asm_stub.inc"

    .text
    .globl  dlsym
    .type   dlsym, @function
dlsym:
    .cfi_startproc
    test    %rdi, %rdi                  /* RTLD_DEFAULT */
    je      1f
    cmp     $-1, %rdi                   /* RTLD_NEXT */
    je      1f
    mov     (%rsp), %rdx                /* the caller's return address */
    jmp     connleak_dlsym_handle
1:  TAIL_JUMP_TO_REAL connleak_real_dlsym, connleak_init_real_dlsym
    .cfi_endproc
    .size   dlsym, .-dlsym
    .section .note.GNU-stack,"",@progbits
