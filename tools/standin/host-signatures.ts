// The imports Envoy provides to ABI 0.2.x modules, with exact signatures, per Envoy profile (docs/proxy-wasm-host.md §4, §5, §7.5),
// and the export signatures Envoy checks at load (§6.1).

export type EnvoyProfile = "current" | "old";

const i = (n: number): string => "i".repeat(n);

/** env functions registered for every ABI (plus the 0.2.x additions). */
function envSignatures(profile: EnvoyProfile, abi: "0_2_0" | "0_2_1"): Map<string, string> {
  const m = new Map<string, string>([
    ["proxy_log", "iii:i"],
    ["proxy_get_status", "iii:i"],
    ["proxy_set_property", "iiii:i"],
    ["proxy_get_property", "iiii:i"],
    ["proxy_send_local_response", `${i(8)}:i`],
    ["proxy_get_shared_data", "iiiii:i"],
    ["proxy_set_shared_data", "iiiii:i"],
    ["proxy_register_shared_queue", "iii:i"],
    ["proxy_resolve_shared_queue", "iiiii:i"],
    ["proxy_dequeue_shared_queue", "iii:i"],
    ["proxy_enqueue_shared_queue", "iii:i"],
    ["proxy_get_header_map_value", "iiiii:i"],
    ["proxy_add_header_map_value", "iiiii:i"],
    ["proxy_replace_header_map_value", "iiiii:i"],
    ["proxy_remove_header_map_value", "iii:i"],
    ["proxy_get_header_map_pairs", "iii:i"],
    ["proxy_set_header_map_pairs", "iii:i"],
    ["proxy_get_header_map_size", "ii:i"],
    ["proxy_get_buffer_status", "iii:i"],
    ["proxy_get_buffer_bytes", "iiiii:i"],
    ["proxy_set_buffer_bytes", "iiiii:i"],
    ["proxy_http_call", `${i(10)}:i`],
    ["proxy_grpc_call", profile === "old" ? `${i(10)}:i` : `${i(12)}:i`],
    ["proxy_grpc_stream", profile === "old" ? `${i(7)}:i` : `${i(9)}:i`],
    ["proxy_grpc_close", "i:i"],
    ["proxy_grpc_cancel", "i:i"],
    ["proxy_grpc_send", "iiii:i"],
    ["proxy_set_tick_period_milliseconds", "i:i"],
    ["proxy_get_current_time_nanoseconds", "i:i"],
    ["proxy_define_metric", "iiii:i"],
    ["proxy_increment_metric", "iI:i"],
    ["proxy_record_metric", "iI:i"],
    ["proxy_get_metric", "ii:i"],
    ["proxy_set_effective_context", "i:i"],
    ["proxy_done", ":i"],
    ["proxy_call_foreign_function", `${i(6)}:i`],
    ["proxy_continue_stream", "i:i"],
    ["proxy_close_stream", "i:i"],
  ]);
  if (abi === "0_2_1") m.set("proxy_get_log_level", "i:i");
  return m;
}

const WASI_SIGNATURES = new Map<string, string>([
  ["fd_write", "iiii:i"],
  ["fd_read", "iiii:i"],
  ["fd_seek", "iIii:i"],
  ["fd_close", "i:i"],
  ["fd_fdstat_get", "ii:i"],
  ["fd_fdstat_set_flags", "ii:i"],
  ["fd_prestat_get", "ii:i"],
  ["fd_prestat_dir_name", "iii:i"],
  ["path_open", "iiiiiIIii:i"],
  ["environ_sizes_get", "ii:i"],
  ["environ_get", "ii:i"],
  ["args_sizes_get", "ii:i"],
  ["args_get", "ii:i"],
  ["clock_time_get", "iIi:i"],
  ["random_get", "ii:i"],
  ["proc_exit", "i:"],
  ["sched_yield", ":i"],
  ["poll_oneoff", "iiii:i"],
]);

export function providedImports(profile: EnvoyProfile, abi: "0_2_0" | "0_2_1"): Map<string, Map<string, string>> {
  return new Map([
    ["env", envSignatures(profile, abi)],
    ["wasi_snapshot_preview1", WASI_SIGNATURES],
    ["wasi_unstable", WASI_SIGNATURES],
  ]);
}

/** Export signatures cpp-host resolves; a present export with another signature fails the load. */
export const EXPORT_SIGNATURES = new Map<string, string>([
  ["proxy_abi_version_0_2_0", ":"],
  ["proxy_abi_version_0_2_1", ":"],
  ["proxy_abi_version_0_1_0", ":"],
  ["_initialize", ":"],
  ["_start", ":"],
  ["__main_void", ":i"],
  ["main", "ii:i"],
  ["malloc", "i:i"],
  ["proxy_on_memory_allocate", "i:i"],
  ["proxy_on_context_create", "ii:"],
  ["proxy_on_vm_start", "ii:i"],
  ["proxy_validate_configuration", "ii:i"],
  ["proxy_on_configure", "ii:i"],
  ["proxy_on_tick", "i:"],
  ["proxy_on_queue_ready", "ii:"],
  ["proxy_on_foreign_function", "iii:"],
  ["proxy_on_request_headers", "iii:i"],
  ["proxy_on_response_headers", "iii:i"],
  ["proxy_on_request_body", "iii:i"],
  ["proxy_on_response_body", "iii:i"],
  ["proxy_on_request_trailers", "ii:i"],
  ["proxy_on_response_trailers", "ii:i"],
  ["proxy_on_request_metadata", "ii:i"],
  ["proxy_on_response_metadata", "ii:i"],
  ["proxy_on_http_call_response", "iiiii:"],
  ["proxy_on_grpc_receive_initial_metadata", "iii:"],
  ["proxy_on_grpc_receive_trailing_metadata", "iii:"],
  ["proxy_on_grpc_receive", "iii:"],
  ["proxy_on_grpc_close", "iii:"],
  ["proxy_on_done", "i:i"],
  ["proxy_on_log", "i:"],
  ["proxy_on_delete", "i:"],
  ["proxy_on_new_connection", "i:i"],
  ["proxy_on_downstream_data", "iii:i"],
  ["proxy_on_upstream_data", "iii:i"],
  ["proxy_on_downstream_connection_close", "ii:"],
  ["proxy_on_upstream_connection_close", "ii:"],
]);
