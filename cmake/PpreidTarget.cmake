# Shared compile settings. One precompiled header (LibTorch and the other heavy headers) is built
# once in ppreid_pch and reused by every target, which is what keeps a clean 2-core build short.

add_library(ppreid_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/pch.cpp)
target_link_libraries(ppreid_pch PUBLIC ${TORCH_LIBRARIES} ${OpenCV_LIBS} spdlog::spdlog)
target_include_directories(ppreid_pch PUBLIC ${OpenCV_INCLUDE_DIRS})
target_precompile_headers(ppreid_pch PRIVATE
  <torch/torch.h> <opencv2/core.hpp> <opencv2/imgproc.hpp> <spdlog/spdlog.h>
  <string> <vector> <map> <memory> <optional> <filesystem>)
target_compile_options(ppreid_pch PRIVATE -Wall -Wextra)

function(ppreid_settings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  target_precompile_headers(${target} REUSE_FROM ppreid_pch)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()
