#include "simulations/report/table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/support/errors.h"

namespace ppreid::sim::report {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

Table results() { return {"Results", {"method", "mAP"}, {}, {{"raw", "0.912"}, {"pis", "0.85"}}}; }

TEST(TableTest, MarkdownIsAPaddedPipeTableUnderABoldCaption) {
  EXPECT_EQ(results().to_markdown(),
            "**Results**\n"
            "\n"
            "| method |   mAP |\n"
            "| :----- | ----: |\n"
            "| raw    | 0.912 |\n"
            "| pis    |  0.85 |\n");
}

TEST(TableTest, MarkdownWithoutCaptionHonoursExplicitAlignmentAndMinimumWidth) {
  const Table t{"", {"n", "x"}, {Align::kRight, Align::kLeft}, {{"1", "a"}}};
  EXPECT_EQ(t.to_markdown(),
            "|   n | x   |\n"
            "| --: | :-- |\n"
            "|   1 | a   |\n");
}

TEST(TableTest, HtmlHasCaptionHeaderAndNumericClassOnRightAlignedCells) {
  EXPECT_EQ(results().to_html(),
            "<table>\n"
            "<caption>Results</caption>\n"
            "<thead><tr><th>method</th><th class=\"num\">mAP</th></tr></thead>\n"
            "<tbody>\n"
            "<tr><td>raw</td><td class=\"num\">0.912</td></tr>\n"
            "<tr><td>pis</td><td class=\"num\">0.85</td></tr>\n"
            "</tbody>\n"
            "</table>\n");
}

TEST(TableTest, MarkdownEscapesPipesAndFlattensNewlines) {
  const Table t{"", {"a|b"}, {}, {{"x|y\nz"}}};
  EXPECT_EQ(t.to_markdown(),
            "| a\\|b   |\n"
            "| :----- |\n"
            "| x\\|y z |\n");
}

TEST(TableTest, HtmlEscapesEveryCellAndTheCaption) {
  const Table t{"<A & B>", {"\"q\""}, {}, {{"<b>&'"}}};
  const std::string html = t.to_html();
  EXPECT_THAT(html, HasSubstr("<caption>&lt;A &amp; B&gt;</caption>"));
  EXPECT_THAT(html, HasSubstr("<th>&quot;q&quot;</th>"));
  EXPECT_THAT(html, HasSubstr("<td>&lt;b&gt;&amp;&#39;</td>"));
  EXPECT_EQ(html_escape("a<b>&\"c\"'"), "a&lt;b&gt;&amp;&quot;c&quot;&#39;");
  EXPECT_EQ(html_escape("plain"), "plain");
}

TEST(TableTest, FormatFixed) {
  EXPECT_EQ(format_fixed(0.1234, 3), "0.123");
  EXPECT_EQ(format_fixed(0.1236, 3), "0.124");
  EXPECT_EQ(format_fixed(1.0 / 3, 2), "0.33");
  EXPECT_EQ(format_fixed(7.6, 0), "8");
  EXPECT_EQ(format_fixed(-1.25, 1), "-1.2");  // binary -1.25 is exact: ties to even
  EXPECT_EQ(format_fixed(-1.26, 1), "-1.3");
  EXPECT_EQ(format_fixed(12345.678, 1), "12345.7");
  EXPECT_EQ(format_fixed(-0.0001, 3), "0.000");
  EXPECT_EQ(format_fixed(-0.0, 2), "0.00");
  EXPECT_EQ(format_fixed(std::nan(""), 3), "n/a");
  EXPECT_EQ(format_fixed(std::numeric_limits<double>::infinity(), 3), "inf");
  EXPECT_EQ(format_fixed(-std::numeric_limits<double>::infinity(), 3), "-inf");
  EXPECT_THAT(testing::error_of([] { format_fixed(1, -1); }), HasSubstr("decimals"));
}

TEST(TableTest, ARowOfTheWrongSizeNamesTheTableAndTheRow) {
  const Table t{"Sweep", {"a", "b"}, {}, {{"1", "2"}, {"3"}}};
  for (const std::string& e :
       {testing::error_of([&] { t.to_markdown(); }), testing::error_of([&] { t.to_html(); })})
    EXPECT_THAT(e, AllOf(HasSubstr("'Sweep'"), HasSubstr("row 1"), HasSubstr("1 cells")));
}

TEST(TableTest, MisfitAlignmentAndNoColumnsAreErrors) {
  const Table misaligned{"T", {"a", "b"}, {Align::kLeft}, {}};
  EXPECT_THAT(testing::error_of([&] { misaligned.to_markdown(); }), HasSubstr("alignments"));
  const Table empty{"E", {}, {}, {}};
  EXPECT_THAT(testing::error_of([&] { empty.to_html(); }), HasSubstr("no columns"));
}

}  // namespace
}  // namespace ppreid::sim::report
