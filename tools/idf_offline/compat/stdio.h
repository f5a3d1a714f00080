/* pqlr offline ESP-IDF build: Debian's picolibc 1.8 declares `FILE *const stdin` (and stdout, stderr) where
 * ESP-IDF's picolibc port defines them as plain `FILE *`; the declarations are made to agree. */
#pragma once
#define stdin __picolibc_const_stdin
#define stdout __picolibc_const_stdout
#define stderr __picolibc_const_stderr
#include_next <stdio.h>
#undef stdin
#undef stdout
#undef stderr
extern FILE *stdin;
extern FILE *stdout;
extern FILE *stderr;
