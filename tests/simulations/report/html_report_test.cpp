#include "simulations/report/html_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include "core/util/atomic_file.h"
#include "simulations/report/image_grid.h"
#include "simulations/report/plot.h"
#include "tests/support/errors.h"
#include "tests/support/temp_dir.h"

namespace ppreid::sim::report {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kDataUri = "data:image/png;base64,";

// Independent of the encoder under test: OpenSSL's block decoder, minus the zero bytes it
// emits for '=' padding.
std::string base64_decode(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return "(invalid base64)";
  out.resize(static_cast<std::size_t>(n) - std::count(text.begin(), text.end(), '='));
  return out;
}

std::vector<std::string> embedded_pngs(const std::string& html) {
  std::vector<std::string> payloads;
  for (auto at = html.find(kDataUri); at != std::string::npos; at = html.find(kDataUri, at)) {
    at += kDataUri.size();
    payloads.push_back(html.substr(at, html.find('"', at) - at));
  }
  return payloads;
}

TEST(HtmlBase64Test, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_EQ(base64_encode("M"), "TQ==");
  EXPECT_EQ(base64_encode(std::string_view("\0\xff\xfe", 3)), "AP/+");
}

TEST(HtmlBase64Test, InputsLongerThanOneEncoderChunkRoundTrip) {
  std::string bytes(3 * 65536 * 2 + 5, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 131 % 251);
  const std::string text = base64_encode(bytes);
  EXPECT_EQ(text.size(), (bytes.size() + 2) / 3 * 4);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_EQ(base64_decode(text), bytes);
}

class HtmlReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "plots");
    plot_ = dir_ / "plots" / "map.png";
    grid_ = dir_ / "grids" / "deid.png";
    write_png(plot_, render_plot({{"site-1", {1, 2}, {0.1, 0.3}, {}}}, {}));
    write_png(grid_, render_grid({{{cv::Mat(8, 4, CV_8UC3, cv::Scalar(1, 2, 3)), "raw"}}}, {}));
    table_ = {"Utility", {"method", "mAP"}, {}, {{"raw", "0.912"}}};
    sections_ = {{"Setup & data", {"Two sites <tiny>."}, {table_}, {{plot_, "mAP per round"}}},
                 {"De-identification", {}, {}, {{grid_, "raw vs de-identified"}}}};
  }
  ppreid::testing::TempDir dir_;
  fs::path plot_, grid_;
  Table table_;
  std::vector<ReportSection> sections_;
};

TEST_F(HtmlReportTest, ThePageHasTitlesContentsTablesAndEscapedText) {
  const std::string html = render_html("Run <1>", sections_, "took 3 s");
  EXPECT_THAT(html, HasSubstr("<title>Run &lt;1&gt;</title>"));
  EXPECT_THAT(html, HasSubstr("<h1>Run &lt;1&gt;</h1>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"#section-1\">Setup &amp; data</a>"));
  EXPECT_THAT(html, HasSubstr("<a href=\"#section-2\">De-identification</a>"));
  EXPECT_THAT(html, HasSubstr("<section id=\"section-1\">\n<h2>Setup &amp; data</h2>"));
  EXPECT_THAT(html, HasSubstr("<section id=\"section-2\">\n<h2>De-identification</h2>"));
  EXPECT_THAT(html, HasSubstr("<p>Two sites &lt;tiny&gt;.</p>"));
  EXPECT_THAT(html, HasSubstr(table_.to_html()));
  EXPECT_THAT(html, HasSubstr("<figcaption>mAP per round</figcaption>"));
  EXPECT_THAT(html, HasSubstr("<footer>took 3 s</footer>"));
  EXPECT_THAT(html, HasSubstr("td.num{text-align:right"));
  EXPECT_THAT(html, Not(HasSubstr("<tiny>")));
}

TEST_F(HtmlReportTest, ThePageIsSelfContained) {
  const std::string html = render_html("Run", sections_);
  const auto payloads = embedded_pngs(html);
  ASSERT_EQ(payloads.size(), 2u);  // one per figure
  EXPECT_EQ(base64_decode(payloads[0]), util::read_file(plot_));
  EXPECT_EQ(base64_decode(payloads[1]), util::read_file(grid_));
  // Outside the embedded images (whose base64 could spell anything) nothing refers elsewhere.
  std::string rest = html;
  for (const auto& p : payloads) rest.erase(rest.find(p), p.size());
  std::transform(rest.begin(), rest.end(), rest.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* outside : {"http", "//", "<script", "<link", "@import", "url("})
    EXPECT_THAT(rest, Not(HasSubstr(outside))) << outside;
}

TEST_F(HtmlReportTest, AMissingOrBrokenFigureNamesTheFile) {
  const fs::path missing = dir_ / "plots" / "nowhere.png";
  sections_[1].figures.push_back({missing, "gone"});
  EXPECT_THAT(testing::error_of([&] { render_html("Run", sections_); }),
              AllOf(HasSubstr(missing.string()), HasSubstr("does not exist")));
  const fs::path text = dir_ / "plots" / "not-a.png";
  util::write_file_atomic(text, "hello");
  sections_[1].figures.back() = {text, "text"};
  EXPECT_THAT(testing::error_of([&] { render_html("Run", sections_); }),
              AllOf(HasSubstr(text.string()), HasSubstr("not a PNG")));
}

TEST_F(HtmlReportTest, WriteHtmlReportWritesTheRenderedPage) {
  const fs::path file = dir_ / "report.html";
  write_html_report(file, "Run", sections_, "footer");
  EXPECT_EQ(util::read_file(file), render_html("Run", sections_, "footer"));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), {}), 3);  // plots, grids, html
}

TEST_F(HtmlReportTest, MarkdownLinksFiguresRelativeToItsDirectory) {
  const fs::path spaced = dir_ / "grids" / "my grid (1).png";
  fs::copy_file(grid_, spaced);
  sections_[1].figures.push_back({spaced, "with [brackets]"});
  EXPECT_EQ(render_markdown("Run", sections_, dir_.path(), "took 3 s"),
            "# Run\n"
            "\n"
            "## Setup & data\n"
            "\n"
            "Two sites <tiny>.\n"
            "\n"
            "**Utility**\n"
            "\n"
            "| method |   mAP |\n"
            "| :----- | ----: |\n"
            "| raw    | 0.912 |\n"
            "\n"
            "![mAP per round](plots/map.png)\n"
            "\n"
            "## De-identification\n"
            "\n"
            "![raw vs de-identified](grids/deid.png)\n"
            "\n"
            "![with \\[brackets\\]](<grids/my grid (1).png>)\n"
            "\n"
            "---\n"
            "\n"
            "took 3 s\n");
  EXPECT_THAT(render_markdown("Run", sections_, dir_ / "plots"),
              HasSubstr("![mAP per round](map.png)"));
  EXPECT_THAT(render_markdown("Run", sections_, dir_ / "plots"),
              HasSubstr("![raw vs de-identified](../grids/deid.png)"));
}

}  // namespace
}  // namespace ppreid::sim::report
