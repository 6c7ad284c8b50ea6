/* cli.h - command line, config file, help texts and command dispatch. */
#ifndef TLSRPT_CLI_H
#define TLSRPT_CLI_H

#include "common.h"

/* The whole program: returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
