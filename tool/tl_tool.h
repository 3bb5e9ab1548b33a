#ifndef TL_TOOL_H
#define TL_TOOL_H

/* `ccgate policy from-evidence --server HOST:PORT [--allow-sim]`: exit 0, 1 (rejected) or 2. */
int tl_tool_policy_from_evidence(int argc, char **argv);

/* `ccgate evidence inspect FILE`: exit 0, or 2 on unreadable or malformed input. */
int tl_tool_evidence_inspect(int argc, char **argv);

#endif
