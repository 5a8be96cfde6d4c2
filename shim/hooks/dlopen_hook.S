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
    .text
    .globl  dlopen
    .type   dlopen, @function
dlopen:
    .cfi_startproc
    test    $0x8, %esi                  /* RTLD_DEEPBIND */
    je      1f
    test    $0x4, %esi                  /* RTLD_NOLOAD: nothing new is loaded */
    jne     1f
    push    %rdi
    .cfi_adjust_cfa_offset 8
    push    %rsi
    .cfi_adjust_cfa_offset 8
    mov     16(%rsp), %rdx              /* the caller's return address */
    sub     $8, %rsp
    .cfi_adjust_cfa_offset 8
    call    connleak_dlopen_wants
    add     $8, %rsp
    .cfi_adjust_cfa_offset -8
    pop     %rsi
    .cfi_adjust_cfa_offset -8
    pop     %rdi
    .cfi_adjust_cfa_offset -8
    test    %al, %al
    je      1f
    mov     (%rsp), %rdx                /* the caller's return address */
    jmp     connleak_dlopen_deepbind
1:  mov     connleak_real_dlopen(%rip), %rax
    test    %rax, %rax
    je      2f
    jmp     *%rax
2:  /* before initialisation: find the real dlopen, then jump with the
     * original arguments and return address intact. */
    push    %rdi
    .cfi_adjust_cfa_offset 8
    push    %rsi
    .cfi_adjust_cfa_offset 8
    sub     $8, %rsp
    .cfi_adjust_cfa_offset 8
    call    connleak_init_real_dlopen
    add     $8, %rsp
    .cfi_adjust_cfa_offset -8
    pop     %rsi
    .cfi_adjust_cfa_offset -8
    pop     %rdi
    .cfi_adjust_cfa_offset -8
    jmp     *%rax
    .cfi_endproc
    .size   dlopen, .-dlopen
    .section .note.GNU-stack,"",@progbits
