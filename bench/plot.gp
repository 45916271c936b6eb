# bench/results.png: requests per second per scenario (clusters) and
# configuration (bars), medians at the highest concurrency measured. bench/report
# writes the data (tab-separated, a header of configuration names, "-" where
# a configuration was not measured) and calls
#   gnuplot -e "datafile='F'; outfile='O'; conns='64'; ncols=10" bench/plot.gp

set terminal pngcairo size 1400,860 font "sans,11" noenhanced
set output outfile
set datafile separator "\t"
set datafile missing "-"

set title sprintf("Requests per second, wrk -t1 -c%s, 2 cores, median of rounds (higher is better)", conns)
set ylabel "requests per second"
set yrange [0:*]
set format y "%.0f"
set grid ytics
set xtics nomirror scale 0
set key below horizontal maxcols 3 Left reverse noautotitle width -8

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border rgb "#444444"
set boxwidth 0.95

# Floors in greys, fcgi-session in blues, the peers in warm colours, in
# bench/run's order of configurations.
set linetype 1 lc rgb "#e0e0e0"
set linetype 2 lc rgb "#c6c6c6"
set linetype 3 lc rgb "#ababab"
set linetype 4 lc rgb "#8f8f8f"
set linetype 5 lc rgb "#737373"
set linetype 6 lc rgb "#525252"
set linetype 7 lc rgb "#1f78b4"
set linetype 8 lc rgb "#6baed6"
set linetype 9 lc rgb "#e6550d"
set linetype 10 lc rgb "#31a354"
set linetype 11 lc rgb "#a1d99b"

plot for [i=2:ncols+1] datafile using i:xtic(1) title columnhead(i) lt (i - 1)
