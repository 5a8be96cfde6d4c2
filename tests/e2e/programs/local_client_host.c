/* Linked against no client library: loads argv[1] (local_client_module.so)
 * RTLD_LOCAL, as interpreters load their drivers, and runs its "mysql" or
 * "pq" drive (argv[2]). */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  void* mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!mod) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  int (*drive)(const char*) = NULL;
  *(void**)(&drive) = dlsym(mod, "module_drive"); /* POSIX idiom for function pointers */
  return drive ? drive(argv[2]) : 2;
}
