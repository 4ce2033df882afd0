# cmake -DROOT=<source dir> -DFILES=<a;b;...> | -DFILE_LIST=<file, one path a line>
#       -DWHAT=<target> [-DSTAMP=<file>] -P CheckLayers.cmake
#
# Fails when any of FILES, or any project header they include directly or through other project
# headers, includes a LibTorch header (torch/, ATen/, c10/, caffe2/). The torch-free libraries
# run it at build time, so a LibTorch include that creeps into a light layer breaks the build and
# the message shows the chain of includes that brought it in.
cmake_minimum_required(VERSION 3.25)

if(FILE_LIST)
  file(STRINGS "${FILE_LIST}" FILES)
endif()
if(NOT ROOT OR NOT FILES OR NOT WHAT)
  message(FATAL_ERROR "usage: cmake -DROOT=dir -DFILES=a;b -DWHAT=name -P CheckLayers.cmake")
endif()

set(torch_regex "^[ \t]*#[ \t]*include[ \t]*[<\"](torch|ATen|c10|caffe2)/[^>\"]*[>\"]")
set(project_regex "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\"")

set(failures "")
set(visited "")

# Depth-first over project includes; `chain` is the path from the checked file to `file`.
function(scan file chain)
  list(FIND visited "${file}" seen)
  if(NOT seen EQUAL -1)
    return()
  endif()
  list(APPEND visited "${file}")
  set(visited "${visited}" PARENT_SCOPE)
  file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(line MATCHES "${torch_regex}")
      string(STRIP "${line}" line)
      list(APPEND failures "${chain}: ${line}")
    elseif(line MATCHES "${project_regex}")
      set(included "${CMAKE_MATCH_1}")
      if(EXISTS "${ROOT}/${included}")
        scan("${ROOT}/${included}" "${chain} -> ${included}")
      endif()
    endif()
  endforeach()
  set(failures "${failures}" PARENT_SCOPE)
  set(visited "${visited}" PARENT_SCOPE)
endfunction()

foreach(f IN LISTS FILES)
  file(RELATIVE_PATH rel "${ROOT}" "${f}")
  set(visited "")
  scan("${f}" "${rel}")
endforeach()

if(failures)
  list(REMOVE_DUPLICATES failures)
  list(JOIN failures "\n  " text)
  message(FATAL_ERROR
    "${WHAT} is a torch-free layer, but these files include LibTorch:\n  ${text}\n"
    "Move the tensor code to a torch library (core/tensor, core/data's loader/transforms, "
    "protocols/torch_wire, ...) or use a forward declaration; see docs/ARCHITECTURE.md, Layers.")
endif()
if(STAMP)
  file(WRITE "${STAMP}" "ok\n")
endif()
