/* main.c - thin entry point; everything else is in the library. */
#include "cli.h"

int
main(int argc, char **argv)
{
  return cli_main(argc, argv);
}
