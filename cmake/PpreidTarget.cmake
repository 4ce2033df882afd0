# Shared compile settings and the two kinds of library.
#
# Torch libraries reuse one precompiled header (LibTorch and the other heavy headers), built once
# in ppreid_pch. Torch-free libraries (util, data readers, profile, image quality, protocols) are
# compiled without it: with the PCH even an 80-line torch-free file cost ~8 s, without it <1 s.
# Unity builds (CMAKE_UNITY_BUILD, on in run.sh and CI, off in the dev preset) merge the sources
# of one folder into one translation unit, at most PPREID_UNITY_GROUP_MAX files each.

set(PPREID_UNITY_GROUP_MAX 16 CACHE STRING "Most source files per unity translation unit")

add_library(ppreid_pch OBJECT ${CMAKE_CURRENT_LIST_DIR}/pch.cpp)
target_link_libraries(ppreid_pch PUBLIC ${TORCH_LIBRARIES} ${OpenCV_LIBS} spdlog::spdlog)
target_include_directories(ppreid_pch PUBLIC ${OpenCV_INCLUDE_DIRS})
target_precompile_headers(ppreid_pch PRIVATE
  <torch/torch.h> <opencv2/core.hpp> <opencv2/imgproc.hpp> <spdlog/spdlog.h>
  <string> <vector> <map> <memory> <optional> <filesystem>)
target_compile_options(ppreid_pch PRIVATE -Wall -Wextra)
set_target_properties(ppreid_pch PROPERTIES UNITY_BUILD OFF)

# One unity group per source folder (split into chunks of PPREID_UNITY_GROUP_MAX), so that a name
# clash can only happen between files of one folder, where it is easy to see and fix.
function(ppreid_unity_groups target)
  get_target_property(sources ${target} SOURCES)
  foreach(src IN LISTS sources)
    if(NOT src MATCHES "\\.cpp$")
      continue()
    endif()
    get_filename_component(abs "${src}" ABSOLUTE)
    get_source_file_property(opts "${abs}" COMPILE_OPTIONS)
    if(opts)  # own flags (the -O3 kernels): compiled alone
      continue()
    endif()
    get_filename_component(dir "${abs}" DIRECTORY)
    file(RELATIVE_PATH rel "${PROJECT_SOURCE_DIR}" "${dir}")
    string(MAKE_C_IDENTIFIER "${rel}" group)
    if(NOT DEFINED count_${group})
      set(count_${group} 0)
    endif()
    math(EXPR chunk "${count_${group}} / ${PPREID_UNITY_GROUP_MAX}")
    math(EXPR count_${group} "${count_${group}} + 1")
    set_source_files_properties("${abs}" TARGET_DIRECTORY ${target}
                                PROPERTIES UNITY_GROUP "${group}_${chunk}")
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD_MODE GROUP)
endfunction()

# Settings of every target. TORCH_FREE: no LibTorch PCH (and the library must not link LibTorch;
# cmake/CheckLayers.cmake checks its headers at build time).
function(ppreid_settings target)
  cmake_parse_arguments(ARG "TORCH_FREE" "" "" ${ARGN})
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(NOT ARG_TORCH_FREE)
    target_precompile_headers(${target} REUSE_FROM ppreid_pch)
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  ppreid_unity_groups(${target})
endfunction()

# ppreid_library(<name> [TORCH_FREE] SOURCES <files...> LINK <targets...>)
function(ppreid_library name)
  cmake_parse_arguments(ARG "TORCH_FREE" "" "SOURCES;LINK" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  if(ARG_TORCH_FREE)
    ppreid_settings(${name} TORCH_FREE)
  else()
    ppreid_settings(${name})
  endif()
  target_link_libraries(${name} PUBLIC ${ARG_LINK})
endfunction()

# ppreid_check_layers(<target>...): at build time, before the target compiles, check that its
# sources and the headers of its folders (apart from headers whose .cpp belongs to another
# target, such as core/data/loader.h) include no LibTorch, directly or through project headers.
function(ppreid_check_layers)
  foreach(target IN LISTS ARGN)
    get_target_property(sources ${target} SOURCES)
    set(files "")
    set(dirs "")
    foreach(src IN LISTS sources)
      get_filename_component(abs "${src}" ABSOLUTE)
      list(APPEND files "${abs}")
      get_filename_component(dir "${abs}" DIRECTORY)
      list(APPEND dirs "${dir}")
    endforeach()
    list(REMOVE_DUPLICATES dirs)
    foreach(dir IN LISTS dirs)
      file(GLOB headers CONFIGURE_DEPENDS "${dir}/*.h")
      foreach(h IN LISTS headers)
        get_filename_component(stem "${h}" NAME_WE)
        if(EXISTS "${dir}/${stem}.cpp" AND NOT "${dir}/${stem}.cpp" IN_LIST files)
          continue()
        endif()
        list(APPEND files "${h}")
      endforeach()
    endforeach()
    set(stamp "${CMAKE_CURRENT_BINARY_DIR}/${target}.layers.stamp")
    set(list_file "${CMAKE_CURRENT_BINARY_DIR}/${target}.layers.files")
    list(JOIN files "\n" files_text)
    file(WRITE "${list_file}" "${files_text}\n")
    add_custom_command(OUTPUT "${stamp}"
      COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR} -DFILE_LIST=${list_file}
              -DWHAT=${target} -DSTAMP=${stamp} -P ${PROJECT_SOURCE_DIR}/cmake/CheckLayers.cmake
      DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/CheckLayers.cmake
      COMMENT "Checking that ${target} includes no LibTorch"
      VERBATIM)
    add_custom_target(${target}_layers DEPENDS "${stamp}")
    add_dependencies(${target} ${target}_layers)
  endforeach()
endfunction()
