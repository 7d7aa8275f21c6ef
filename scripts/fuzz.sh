#!/usr/bin/env bash
# Fuzzes the DICOM and NIfTI readers with cargo fuzz (libFuzzer), each target for SECONDS (default 300),
# starting from corpora seeded with the real files under VOXFLOW_TESTDATA (default ../shared/data). Needs
# cargo-fuzz (`cargo install cargo-fuzz`). This machine has only a stable toolchain, so the instrumented
# build runs with RUSTC_BOOTSTRAP=1 and without a sanitizer (`-s none`): crashes are panics and aborts,
# not memory errors. Prints the number of executions of each target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
data=${VOXFLOW_TESTDATA:-../shared/data}
work=target/fuzz-work
mkdir -p "$work/corpus/nifti_bytes" "$work/corpus/dicom_file" "$work/artifacts"
if [ -d "$data" ]; then
  find "$data/nifti" -type f \( -name '*.nii' -o -name '*.nii.gz' \) -size -1M -exec cp -n {} "$work/corpus/nifti_bytes/" \;
  find "$data/dicom/ts_matrix_mr" "$data/dicom/misc" "$data/dicom/multiframe_emr" "$data/dicom/negative" \
    -type f -size -120k -exec cp -n {} "$work/corpus/dicom_file/" \; 2>/dev/null || true
else
  echo "SKIPPED seeding: no test data at $data"
fi
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$PWD/target/fuzz
for t in ${FUZZ_TARGETS:-nifti_bytes dicom_file}; do
  echo "== $t for ${seconds}s"
  (cd engine/imaging && cargo fuzz run -s none --release "$t" "$PWD/../../$work/corpus/$t" -- \
     -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 \
     -artifact_prefix="$PWD/../../$work/artifacts/" -print_final_stats=1) 2>&1 | tee "$work/$t.log" | \
     grep -E "^(Done|stat::number_of_executed_units|stat::peak_rss|==[0-9]+== ERROR|SUMMARY)|panicked" || true
done
