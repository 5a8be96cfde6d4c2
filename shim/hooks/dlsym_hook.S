/* dlsym, interposed. glibc decides the scope of dlsym(RTLD_NEXT, ...) and
 * dlsym(RTLD_DEFAULT, ...) from its caller's return address, so for those two
 * handles the hook must be a true tail jump: a C wrapper's own call would make
 * the shim the caller (RTLD_NEXT then searches after the shim, not after the
 * program's module, and objects loaded RTLD_LOCAL get NULL). Any other handle
 * goes to connleak_dlsym_handle(handle, name, caller), which may hand back a
 * tracking wrapper (hooks_dlsym.cpp). */
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
1:  mov     connleak_real_dlsym(%rip), %rax
    test    %rax, %rax
    je      2f
    jmp     *%rax
2:  /* before initialisation: find the real dlsym, then jump with the
     * original arguments and return address intact. */
    push    %rdi
    .cfi_adjust_cfa_offset 8
    push    %rsi
    .cfi_adjust_cfa_offset 8
    sub     $8, %rsp
    .cfi_adjust_cfa_offset 8
    call    connleak_init_real_dlsym
    add     $8, %rsp
    .cfi_adjust_cfa_offset -8
    pop     %rsi
    .cfi_adjust_cfa_offset -8
    pop     %rdi
    .cfi_adjust_cfa_offset -8
    jmp     *%rax
    .cfi_endproc
    .size   dlsym, .-dlsym
    .section .note.GNU-stack,"",@progbits
