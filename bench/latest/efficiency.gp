# lockstep-bench matrix: efficiency vs overcommit (gnuplot 5).
# Redraw: gnuplot -e "set terminal svg size 1120,1900; set output 'x.svg'" efficiency.gp
set multiplot layout 5,2 title 'lockstep-bench matrix: efficiency (median, bars min–max over 5 repetitions); dotted: 0.9' font ',13'
set xtics ("1×" 1, "1.5×" 1.5, "2×" 2, "3×" 3)
set xrange [0.85:3.15]
set yrange [0:3.3]
set ytics 0.2
set mytics 2
set grid ytics mytics xtics lc rgb '#dddddd'
set xlabel 'vCPUs per host CPU' offset 0,0.5
set ylabel 'efficiency' offset 1.5,0
set arrow 1 from graph 0, first 0.9 to graph 1, first 0.9 nohead dt 3 lc rgb '#555555'
set key off
set bars small
set title 'ticket lock, plain'
plot 'efficiency.dat' index 0 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 0 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 1 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 1 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 2 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 2 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 3 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 3 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 4 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 4 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 5 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 5 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 6 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 6 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 7 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 7 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 8 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 8 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 9 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 9 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 10 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 10 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 11 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 11 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 12 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 12 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 13 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 13 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'ticket lock, pv'
plot 'efficiency.dat' index 14 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 14 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 15 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 15 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 16 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 16 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 17 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 17 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 18 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 18 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 19 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 19 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 20 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 20 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 21 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 21 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 22 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 22 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 23 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 23 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 24 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 24 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 25 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 25 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 26 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 26 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 27 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 27 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'queued (MCS) lock, plain'
plot 'efficiency.dat' index 28 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 28 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 29 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 29 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 30 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 30 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 31 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 31 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 32 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 32 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 33 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 33 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 34 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 34 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 35 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 35 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 36 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 36 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 37 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 37 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 38 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 38 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 39 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 39 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 40 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 40 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 41 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 41 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'queued (MCS) lock, pv'
plot 'efficiency.dat' index 42 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 42 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 43 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 43 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 44 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 44 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 45 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 45 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 46 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 46 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 47 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 47 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 48 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 48 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 49 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 49 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 50 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 50 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 51 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 51 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 52 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 52 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 53 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 53 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 54 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 54 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 55 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 55 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'barrier, plain'
plot 'efficiency.dat' index 56 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 56 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 57 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 57 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 58 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 58 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 59 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 59 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 60 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 60 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 61 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 61 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 62 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 62 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 63 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 63 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 64 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 64 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 65 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 65 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 66 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 66 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 67 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 67 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 68 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 68 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 69 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 69 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'barrier, pv'
plot 'efficiency.dat' index 70 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 70 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 71 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 71 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 72 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 72 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 73 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 73 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 74 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 74 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 75 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 75 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 76 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 76 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 77 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 77 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 78 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 78 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 79 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 79 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 80 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 80 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 81 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 81 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 82 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 82 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 83 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 83 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'barrier, pv, 50 µs rounds'
plot 'efficiency.dat' index 84 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 84 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 85 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 85 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 86 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 86 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 87 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 87 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 88 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 88 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 89 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 89 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 90 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 90 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 91 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 91 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 92 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 92 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 93 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 93 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 94 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 94 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 95 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 95 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 96 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 96 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 97 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 97 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
set title 'IPIs (no locks)'
plot 'efficiency.dat' index 98 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 98 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 99 using 1:2:3:4 with yerrorbars lc rgb '#d62728' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 99 using 1:2 with lines lc rgb '#d62728' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 100 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 100 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 101 using 1:2:3:4 with yerrorbars lc rgb '#ff7f0e' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 101 using 1:2 with lines lc rgb '#ff7f0e' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 102 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 102 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 103 using 1:2:3:4 with yerrorbars lc rgb '#1f77b4' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 103 using 1:2 with lines lc rgb '#1f77b4' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 104 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 104 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 105 using 1:2:3:4 with yerrorbars lc rgb '#2ca02c' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 105 using 1:2 with lines lc rgb '#2ca02c' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 106 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 106 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 107 using 1:2:3:4 with yerrorbars lc rgb '#9467bd' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 107 using 1:2 with lines lc rgb '#9467bd' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 108 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 108 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 109 using 1:2:3:4 with yerrorbars lc rgb '#8c564b' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 109 using 1:2 with lines lc rgb '#8c564b' lw 1.8 dt 2 notitle, \
     'efficiency.dat' index 110 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 7 ps 0.6 notitle, \
     '' index 110 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 1 notitle, \
     'efficiency.dat' index 111 using 1:2:3:4 with yerrorbars lc rgb '#7f7f7f' lw 0.6 pt 5 ps 0.6 notitle, \
     '' index 111 using 1:2 with lines lc rgb '#7f7f7f' lw 1.8 dt 2 notitle
unset title
unset border
unset tics
unset xlabel
unset ylabel
unset grid
unset arrow
set key center center font ',12' spacing 1.3
set yrange [0:1]
plot NaN with linespoints lc rgb '#d62728' lw 2 pt 7 title 'host', NaN with linespoints lc rgb '#ff7f0e' lw 2 pt 7 title 'pinned', NaN with linespoints lc rgb '#1f77b4' lw 2 pt 7 title 'gang', NaN with linespoints lc rgb '#2ca02c' lw 2 pt 7 title 'relaxed', NaN with linespoints lc rgb '#9467bd' lw 2 pt 7 title 'adaptive', NaN with linespoints lc rgb '#8c564b' lw 2 pt 7 title 'mux', NaN with linespoints lc rgb '#7f7f7f' lw 2 pt 7 title 'QEMU (Linux scheduling)', NaN with linespoints lc rgb 'black' dt 1 pt 7 title 'one VM', NaN with linespoints lc rgb 'black' dt 2 pt 5 title 'several VMs'
unset multiplot
